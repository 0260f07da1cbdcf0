"""A local server that speaks the Hugging Face Hub's HTTP API (``hubui localhub``).

The real ``huggingface_hub`` client, and timm / open_clip's ``hf-hub:`` loaders, work against it
when ``HF_ENDPOINT`` points at it. Set ``HF_HUB_DISABLE_XET=1`` before importing huggingface_hub
so uploads use the LFS path this server implements.
"""

from hubui.localhub.faults import FaultInjector, FaultRule
from hubui.localhub.runner import LocalHub, default_root, serve
from hubui.localhub.server import LocalHubApp
from hubui.localhub.storage import Store
from hubui.localhub.users import Directory, Org, User, build_directory

__all__ = [
    "Directory",
    "FaultInjector",
    "FaultRule",
    "LocalHub",
    "LocalHubApp",
    "Org",
    "Store",
    "User",
    "build_directory",
    "default_root",
    "serve",
]
