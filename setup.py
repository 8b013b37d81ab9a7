from setuptools import find_packages, setup

setup(
    name="alloy_hydra",
    version="0.1.0",
    description="Hydra toolkit for aluminium-alloy data cleaning, synthetic data, symbolic regression and inverse design",
    python_requires=">=3.10",
    packages=find_packages(include=["alloy_hydra", "alloy_hydra.*"]),
    package_data={"alloy_hydra": ["data/*.csv"]},
    install_requires=[
        "hydra-core>=1.3.2,<1.4",
        "omegaconf>=2.3,<2.4",
        "numpy>=1.26",
        "pandas>=2.1",
        "scipy>=1.11",
        "scikit-learn>=1.4",
        "rich>=13",
        "matplotlib>=3.8",
    ],
    extras_require={"test": ["pytest>=8", "hypothesis>=6.100", "pytest-xdist>=3.5"]},
)
