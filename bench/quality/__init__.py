"""The parts of bench/loop_quality.py: its work folder, the validator experiments (E0/E1), the
alignment experiments (G0, E2 and E2 with the CTR judge) and the report."""
