"""emotion: Korean text -> a probability distribution over the seven emotions (bundle, tokenizer, ONNX)."""

from moodtune._exports import lazy_exports

_EXPORTS = {
    "normalize_text": "text",
    "Bundle": "bundle",
    "BundleError": "bundle",
    "load_bundle": "bundle",
    "EmotionClassifier": "classifier",
    "Reading": "readable",
    "UnreadableText": "readable",
    "read": "readable",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
