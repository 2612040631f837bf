"""The video demo stage trains to its plateau: the metric it reports is the model's, not where
a still-learning run happened to stop. With a 10x ``pos_embed`` lr the same stage ended while
the loss was still falling from chance and printed 53.1-71.1 % depending on the CPU and the
thread count (docs/demo.md); with the config's 40x it reaches 100 % at seeds 0 and 1."""
import pytest


@pytest.mark.slow
def test_video_stage_learns_the_direction_of_motion(tmp_path, one_thread):
    from projects.eva.demo import video
    rows = video.run_demo_stage(str(tmp_path / 'work'), str(tmp_path / 'data'))
    top1 = float(rows[0][2].rstrip('%'))
    assert top1 >= 95.0, rows  # chance: 25 %
