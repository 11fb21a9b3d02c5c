#!/usr/bin/env python3
"""The everyday alternative to ocellus, for `cargo bench --bench pipeline` (scenario
"every"): a plain Python loop that decodes a clip with OpenCV, letterboxes every frame
with NumPy exactly as the YOLOX contract says, and runs YOLOX-nano with ONNX Runtime
on the CPU, one frame at a time.

    python_loop.py --model yolox_nano_416.onnx --threads 2 CLIP

YOLOX preprocessing (see the model's MANIFEST.txt): r = min(416/h, 416/w), bilinear
resize to (int(w*r), int(h*r)), pasted top-left on a 416x416 canvas of grey 114,
channel order BGR (OpenCV's own), values 0..255 as float32 (no mean/std, no /255),
NCHW. The only post-processing is the person test the ocellus query makes (any row
with objectness x P(person) >= the threshold), so both sides answer the same question.

Prints one JSON object on stdout: frames, person frames, wall seconds and versions.
The caller measures this process's CPU time itself.
"""

import argparse
import json
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort


def letterbox(img: np.ndarray, size: int) -> np.ndarray:
    """BGR HxWx3 uint8 -> 1x3xSIZExSIZE float32, YOLOX letterbox (pad 114, top-left)."""
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(w * r), int(h * r)
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    canvas[:nh, :nw] = resized
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clip")
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--score-threshold", type=float, default=0.3)
    args = ap.parse_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    size = int(inp.shape[2])

    cap = cv2.VideoCapture(args.clip)
    if not cap.isOpened():
        print(f"python_loop: cannot open {args.clip}", file=sys.stderr)
        return 1
    frames = 0
    person_frames = 0
    t0 = time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        (rows,) = session.run(None, {inp.name: letterbox(frame, size)})
        # rows: [1, N, 85] = (cx, cy, w, h, objectness, 80 class probabilities); person = 0.
        if float((rows[0, :, 4] * rows[0, :, 5]).max()) >= args.score_threshold:
            person_frames += 1
        frames += 1
    wall_s = time.perf_counter() - t0
    cap.release()
    if frames == 0:
        print(f"python_loop: no frames decoded from {args.clip}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "frames": frames,
                "person_frames": person_frames,
                "loop_wall_s": round(wall_s, 4),
                "python": sys.version.split()[0],
                "numpy": np.__version__,
                "opencv": cv2.__version__,
                "onnxruntime": ort.__version__,
                "providers": session.get_providers(),
                "input": [inp.name, list(inp.shape)],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
