"""Writes tests/fixtures/model_io/mixed.safetensors with the Python safetensors library, so
tests/test_safetensors.c checks bertc's reader against the reference writer.

The values are chosen to be exactly representable in their dtype, so the C test can hard-code
them: F16 zeros, normals, the largest value, subnormals (smallest, a middle one, the largest),
+-inf and NaN; BF16 the same kinds; I64 that must be refused by safetensors_to_f32; a 0-d scalar;
an empty tensor; and metadata next to "format".

Run from the repository root: python reference/make_safetensors_fixture.py
"""
import numpy as np
import torch
from safetensors.torch import save_file

f16 = [0.0, -0.0, 1.0, -2.5, 65504.0, 2.0**-24, 3 * 2.0**-24, 1023 * 2.0**-24, 2.0**-14,
       float("inf"), float("-inf"), float("nan")]
bf16 = [1.0, -3.140625, 2.0**-130, 3.3895313892515355e38, float("inf"), float("nan")]
tensors = {
    "f32": torch.tensor([[1.5, -2.0, 3.25], [0.0, 1e-30, -1e30]], dtype=torch.float32),
    "f16": torch.tensor(f16, dtype=torch.float16),
    "bf16": torch.tensor(bf16, dtype=torch.bfloat16).reshape(2, 3),
    "i64": torch.tensor([1, -2, 2**40], dtype=torch.int64),
    "scalar": torch.tensor(7.5, dtype=torch.float32),
    "empty": torch.zeros((0, 4), dtype=torch.float32),
}
# The values must survive the cast unchanged, or the C test's hard-coded numbers would be wrong.
for v, t in ((f16, tensors["f16"]), (bf16, tensors["bf16"].flatten())):
    back = t.float().numpy()
    want = np.array(v, dtype=np.float32)
    assert np.array_equal(back, want, equal_nan=True), (back, want)
save_file(tensors, "tests/fixtures/model_io/mixed.safetensors", metadata={"format": "pt", "note": "bertc fixture"})
print("wrote tests/fixtures/model_io/mixed.safetensors")
