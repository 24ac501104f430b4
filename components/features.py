"""Components of the feature and CTR stages: encode, publish, current_generator, train_ctr,
ctr_judge."""

from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components.stage import stage
from trackrec.stages.outputs import Embeddings


@stage("cpu", sharded=Embeddings)
def encode(reccots: Input[Dataset], encoder: str, shard: int, shards: int, embeddings: Output[Dataset]):
    """One user shard's RecCoTs as vectors (BERT-family encoder), in bounded chunks."""
    from trackrec.features.encoder import EncoderConfig
    from trackrec.run_config import section
    from trackrec.stages.encode import encode as run
    from trackrec.stages.shards import Shard

    run(reccots.path, section(EncoderConfig, encoder, "features.encoder"), embeddings.path, shard=Shard(shard, shards))


@stage("cpu", store=True)
def publish(
    embeddings: Input[Dataset],
    features: str,
    active_within_days: int,
    data_version: str,
    published: Output[Artifact],
    card: Output[Markdown],
    generator: Input[Model] = None,
    refreshed_from: Input[Model] = None,
):
    """A new Feast feature version (every older snapshot carried over when only active users were
    refreshed), read by the configured A/B arm once complete; it records the data version and the
    G that wrote it: `generator`, a retrain's G(T), kept with it; `refreshed_from`, a refresh's
    current_generator output, whose version it carries from (and whose G it names). The card: the
    version, the arm and the data version, in KFP's UI."""
    from pathlib import Path

    from trackrec.features.config import FeaturesConfig
    from trackrec.llm.report import published_card
    from trackrec.run_config import section
    from trackrec.stages.publish import publish as run

    config = section(FeaturesConfig, features, "features")
    where = {"generator": generator and generator.path, "refreshed_from": refreshed_from and refreshed_from.path}
    result = run(embeddings.path, config, published.path, active_within_days > 0, data_version, **where)
    Path(card.path).write_text(published_card(result))


@stage("cpu", store=True)
def current_generator(features: str, generator: Output[Model]):
    """The refresh run's G: the one that wrote the version the configured arm reads."""
    from trackrec.features.config import FeaturesConfig
    from trackrec.run_config import section
    from trackrec.stages.publish import current_generator as run

    run(section(FeaturesConfig, features, "features"), generator.path)


@stage("cpu")
def train_ctr(
    dataset: Input[Dataset], ctr: str, model: Output[Model], metrics: Output[Metrics], embeddings: Input[Dataset] = None
):
    """One CTR backbone, with the RecCoT vectors through its connector when they are given, and then
    against the permuted-vector control (the lift, with its 95% interval over test users)."""
    import dataclasses

    from components.metrics import log_metrics
    from trackrec.ctr.config import CTRConfig
    from trackrec.run_config import section
    from trackrec.stages.encode import vector_size
    from trackrec.stages.outputs import Embeddings
    from trackrec.stages.train_ctr import train_ctr as run

    config = section(CTRConfig, ctr, "ctr")
    if embeddings is not None:
        vectors, dim = Embeddings(embeddings.path).required("table"), vector_size(embeddings.path)
        config = dataclasses.replace(config, user_vectors=str(vectors), dense_dim=dim)
    result = run(dataset.path, config, model.path, control=embeddings is not None)
    lift = result.get("lift")
    extra = (
        {}
        if lift is None
        else {"auc_permuted_control": lift["control_auc"]}
        | {f"lift_{key}": value for key, value in lift["difference"].items()}
    )
    log_metrics(metrics, result["test"] | extra)


@stage("cpu")
def ctr_judge(
    dataset: Input[Dataset],
    samples: Input[Dataset],
    greedy: Input[Dataset],
    config: str,
    iteration: int,
    judge: Output[Model],
    metrics: Output[Metrics],
):
    """The CTR backbone trained with G(t)'s greedy RecCoTs as user vectors: the report's CTR curve, and
    the reward model of round t+1 under llm.reward ctr (DPO4Rec). config: the judge section."""
    from components.metrics import log_metrics
    from trackrec.run_config import JudgeConfig, section
    from trackrec.stages.ctr_judge import ctr_judge as run

    settings = section(JudgeConfig, config, "judge")
    log_metrics(metrics, run(dataset.path, samples.path, greedy.path, settings, judge.path, iteration))
