"""Reading a video create request: the body (JSON, or multipart/form-data as
the openai SDK sends it; read by relay/multipart.py) and the billing method a
video can be charged by. What billing reads of it (seconds, size) is
billing/videos.py's.
"""

from __future__ import annotations

from tollway.errors import forbidden
from tollway.relay.multipart import Form, encode_multipart, read_form
from tollway.relay.pipeline import decide
from tollway.state import TokenInfo
from tollway.types import BillingMethod, Model

# The multipart reader's names as the video (and image-edit) code imports them.
VideoForm = Form
read_video_form = read_form
__all__ = ["VideoForm", "encode_multipart", "read_video_form", "video_method"]


def video_method(token: TokenInfo, model: Model) -> BillingMethod:
    method = decide(token, model)[0]
    if method is BillingMethod.PER_USE:
        raise forbidden(
            f"This token's billing mode ({token.billing_mode.value}) bills model '{model.id}' "
            "per_use, but a video reports no tokens to bill. Fix: use a token in "
            "pay_per_call or pay_per_call_priority mode for this model.",
            "billing_mode_mismatch",
        )
    return method
