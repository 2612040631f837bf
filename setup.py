"""EVA-01 on OpenMMLab 2.x: installs the ``projects.eva`` package (pip install -e .)."""
from setuptools import find_packages, setup

setup(
    name='eva-openmmlab',
    version='0.1.0',
    description='EVA: masked visual representation learning at scale, on mmpretrain/mmdet/mmseg/mmaction2',
    packages=find_packages(include=['projects', 'projects.*']),
    python_requires='>=3.10',
    include_package_data=True,
    package_data={'projects.eva.classification': ['*.txt']},
)
