from setuptools import find_packages, setup

setup(
    name="alloy_hydra",
    version="0.1.0",
    description="Hydra toolkit for aluminium-alloy data cleaning, synthetic data, symbolic regression and "
    "inverse design",
    python_requires=">=3.10",
    packages=find_packages(include=["alloy_hydra", "alloy_hydra.*"]),
    package_data={"alloy_hydra": ["data/*.csv"]},
    install_requires=[
        "hydra-core>=1.3.2,<1.4",
        "omegaconf>=2.3,<2.4",
        "numpy>=1.26",
        "pandas>=2.1",
        "scipy>=1.11",
        "scikit-learn>=1.6",  # validate_data, __sklearn_tags__
        "rich>=13",
        "matplotlib>=3.8",
        "threadpoolctl>=3.1",
        # torch arrives with sdv: pin the CPU build (any other version pulls a multi-GB CUDA build)
        "torch==2.13.0",
        "sdv==2.0.0",
        "pyoperon==0.6.2",
        "pymoo==0.6.2",
        "hydra-joblib-launcher==1.2.0",
        "hydra-submitit-launcher==1.2.0",
        "filelock>=3.12",  # the model registry's publish lock
        "pooch>=1.8",  # the public datasets: download with a checksum into a cache (python -m alloy_hydra.datasets)
        "openpyxl>=3.1",  # ... one of them is a spreadsheet
        "pydantic>=2.7",  # the answers' models: the service's responses, the page's and the query log's records
    ],
    extras_require={
        # the design assistant as a service and a web page (python -m alloy_hydra.service | ui)
        "app": ["fastapi>=0.115", "uvicorn>=0.30", "streamlit>=1.40", "httpx>=0.27"],
        "test": [
            "pytest>=8",
            "hypothesis>=6.100",
            "pytest-xdist>=3.5",
            "ruff==0.17.6",
            "fastapi>=0.115",
            "uvicorn>=0.30",
            "streamlit>=1.40",
            "httpx>=0.27",
            "selenium>=4.20",  # the browser test drives the system's chromium
        ],
    },
)
