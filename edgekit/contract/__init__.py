"""The deployment contract (issue: preprocessing, layout, labels and ranges stored in every artifact).

``schema``: the versioned document; ``io``: loading ``contract=`` files; ``stamp``: written into artifacts in
their format's carrier (``ArtifactFormat.write_contract``) and checked against the manifest; ``infer``: what the
source and calibration data say; ``checks``: feeds and data held against a contract; ``preprocess``: raw
images and WAV files made into feeds as a contract says; ``snippets``: reference pre/post-processing code.
"""
from edgekit.contract.schema import SCHEMA, Contract, InputContract, OutputContract

__all__ = ["SCHEMA", "Contract", "InputContract", "OutputContract"]
