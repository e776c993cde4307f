"""The meshstack policy pack: `pulumi preview --policy-pack policy` (see policy/README.md).

Only the Pulumi CLI runs this file: constructing the `PolicyPack` starts the analyzer's gRPC
server and blocks. Tests import `rules` directly.
"""

import sys
from pathlib import Path

from pulumi_policy import PolicyPack

# The CLI runs this directory as a script; make `rules` importable however it is launched.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rules import ALL, ENFORCEMENT, PACK_NAME

PolicyPack(PACK_NAME, policies=ALL, enforcement_level=ENFORCEMENT)
