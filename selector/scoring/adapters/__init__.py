"""PRM adapters, one module per kind; importing the package registers every one of them."""

from selector.scoring.adapters.base import ADAPTERS, PRMAdapter, register_adapter
from selector.scoring.adapters.qwen_prm import QwenPRMAdapter
from selector.scoring.adapters.skywork_prm import SkyworkPRMAdapter
from selector.scoring.adapters.tag_token import TagTokenAdapter
from selector.scoring.adapters.text_template import TextTemplateAdapter
from selector.scoring.adapters.token_classification import (
    TokenClassificationAdapter,
    encode_native_many,
)

__all__ = [
    "ADAPTERS",
    "PRMAdapter",
    "QwenPRMAdapter",
    "SkyworkPRMAdapter",
    "TagTokenAdapter",
    "TextTemplateAdapter",
    "TokenClassificationAdapter",
    "encode_native_many",
    "register_adapter",
]
