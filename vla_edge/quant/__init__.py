"""Drift-aware, hardware-measured mixed-precision quantization of a model folder (issue 6).

One concept per module: `calibration` (real stage inputs from sim episodes), `candidates` (one
ONNX file per precision recipe), `latency` (interleaved timing beside FP32), `drift` (closed-loop
effect against FP32 under identical seeds and noise), `compensation` (affine correction at the
backbone -> action-expert interface, folded into the expert's weights), `allocation` (precision per
stage under a budget), `model_folder` (the output folder), `report` and `pipeline` (the whole run).
No torch: everything here runs on onnx + onnxruntime.
"""
