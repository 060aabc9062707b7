from setuptools import find_packages, setup

setup(
    name="engine_plugin",
    version="0.1.0",
    description="Energy-based inference (CRF taggers, ENGINE NAT) as a fairseq plugin",
    packages=find_packages(include=["engine_plugin", "engine_plugin.*"]),
    python_requires=">=3.9",
)
