"""tests/conftest.py gives every test a clean process state. A Runner's named visualizer
(``name='visualizer'`` in every mmdet/mmseg/mmpretrain runtime) is a singleton: without the
reset, a later test's Runner reuses an earlier one's and writes its ``vis_data`` into the
earlier work dir (two learning tests failed in the clean-clone suite that way and passed
alone). The two tests run in file order: the first leaves an instance, the second must not
see it."""
from mmengine.visualization import Visualizer


def test_a_runner_leaves_a_named_visualizer(tmp_path):
    from mmdet.visualization import DetLocalVisualizer
    DetLocalVisualizer.get_instance('visualizer', save_dir=str(tmp_path),
                                    vis_backends=[dict(type='LocalVisBackend')])
    assert DetLocalVisualizer.check_instance_created('visualizer')


def test_the_next_test_builds_its_own():
    from mmdet.visualization import DetLocalVisualizer
    assert not DetLocalVisualizer.check_instance_created('visualizer')
    assert not Visualizer.check_instance_created('visualizer')
