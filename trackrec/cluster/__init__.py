"""Where a stage runs on a cluster: in its task's pod, or as a Kubeflow Trainer TrainJob."""
