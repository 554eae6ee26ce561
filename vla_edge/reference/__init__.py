"""The reference VLA policy: torch model, demonstrations, training, ONNX export (extras)."""
