"""bertc's dropout masks in a transformers BertForSequenceClassification (a diagnostic for
reference/finetune_hf.py --bertc-dropout): every dropout the model applies in training keeps or
drops exactly the elements bertc keeps or drops for the same seed and micro-batch, so that the two
tools' runs differ by float rounding alone.

bertc's masks (src/backend/ops.h, dropout_keep; src/model/bert.c, the STREAM_* numbers): for
micro-batch m (counted from 0 over the whole run) the seed is mix64(seed ^ mix64(m + 1)); element i
of the tensor a dropout site covers is dropped when u < p with h = mix64(seed ^ mix64(stream *
0x9E3779B97F4A7C15 + i)) and u = (h >> 40) * 2^-24, and kept ones are scaled by 1 / (1 - p).
Sites and their element order:
  stream 0          embeddings, (B, T, C)
  stream 1 + 3l     attention probabilities of layer l, (B, NH, Tq, T)
  stream 2 + 3l     the attention block's output before its residual, (B*Tq, C)
  stream 3 + 3l     the feed-forward block's output before its residual, (B*Tq, C)
  stream 1 + 3L     the pooled output before the classifier, (B, C)
with Tq = T, except in the last layer, where bertc computes only [CLS]'s row (Tq = 1): there the
masks of [CLS]'s rows are bertc's and the other rows keep everything (they do not reach the loss).
"""
import torch

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def _i64(c: int) -> int:
    c &= M64
    return c - (1 << 64) if c >= 1 << 63 else c


C1, C2 = _i64(0xBF58476D1CE4E5B9), _i64(0x94D049BB133111EB)


def mix64_int(z: int) -> int:
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _srl(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 values (torch's >> is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _mix64(z: torch.Tensor) -> torch.Tensor:
    # int64 products wrap modulo 2^64 as uint64 ones do
    z = (z ^ _srl(z, 30)) * C1
    z = (z ^ _srl(z, 27)) * C2
    return z ^ _srl(z, 31)


def keep_mask(seed: int, stream: int, index: torch.Tensor, p: float) -> torch.Tensor:
    """dropout_keep(seed, stream, index, p) for a tensor of int64 indices."""
    h = _mix64(_mix64(index + _i64(stream * GOLDEN)) ^ _i64(seed))
    u = _srl(h, 40).to(torch.float32) * torch.tensor(1.0 / 16777216.0, dtype=torch.float32)
    return u >= torch.tensor(p, dtype=torch.float32)


def apply(x: torch.Tensor, keep: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout as bertc does it: kept elements times 1 / (1 - p), computed in float32."""
    one = torch.tensor(1.0, dtype=torch.float32)
    scale = one / (one - torch.tensor(p, dtype=torch.float32))
    return torch.where(keep, x * scale, torch.zeros((), dtype=x.dtype))


class State:
    """The run's seed and micro-batch counter; call next_micro_batch() before each training forward."""

    def __init__(self, seed: int):
        self.base, self.micro, self.seed = seed, 0, 0

    def next_micro_batch(self):
        self.seed = mix64_int(self.base ^ mix64_int(self.micro + 1))
        self.micro += 1


class ReplayDropout(torch.nn.Module):
    """nn.Dropout's place at one site, its elements indexed in memory order; last_cls marks the
    last layer's (B, T, C) outputs, of which bertc computes [CLS]'s rows alone."""

    def __init__(self, p: float, stream: int, state: State, last_cls: bool = False):
        super().__init__()
        self.p, self.stream, self.state, self.last_cls = p, stream, state, last_cls

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        if not self.last_cls:
            idx = torch.arange(x.numel(), dtype=torch.int64).view_as(x)
            return apply(x, keep_mask(self.state.seed, self.stream, idx, self.p), self.p)
        B, T, C = x.shape
        idx = torch.arange(B * C, dtype=torch.int64).view(B, 1, C)  # row n = b (Tq = 1)
        cls = apply(x[:, :1, :], keep_mask(self.state.seed, self.stream, idx, self.p), self.p)
        return torch.cat([cls, x[:, 1:, :]], dim=1)  # the other rows as they are


def install(model, p_hidden: float, p_att: float, p_cls: float, seed: int) -> State:
    """Puts bertc's masks into a transformers BertForSequenceClassification loaded with
    attn_implementation="eager"; returns the State whose next_micro_batch() the training loop calls."""
    import transformers

    state = State(seed)
    bert = model.bert
    L = len(bert.encoder.layer)
    bert.embeddings.dropout = ReplayDropout(p_hidden, 0, state)
    layer_of = {}
    for l, layer in enumerate(bert.encoder.layer):
        layer.attention.output.dropout = ReplayDropout(p_hidden, 2 + 3 * l, state, last_cls=l == L - 1)
        layer.output.dropout = ReplayDropout(p_hidden, 3 + 3 * l, state, last_cls=l == L - 1)
        layer_of[id(layer.attention.self)] = l
    model.dropout = ReplayDropout(p_cls, 1 + 3 * L, state)

    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        """eager_attention_forward with bertc's mask on the probabilities (B, NH, T, T)."""
        if scaling is None:
            scaling = query.size(-1) ** -0.5
        w = torch.matmul(query, key.transpose(2, 3)) * scaling
        if attention_mask is not None:
            assert attention_mask.dtype != torch.bool, "expected eager's additive mask"
            w = w + attention_mask
        w = torch.nn.functional.softmax(w, dim=-1)
        if module.training and p_att > 0:
            l = layer_of[id(module)]
            B, NH, T, _ = w.shape
            if l < L - 1:
                idx = torch.arange(B * NH * T * T, dtype=torch.int64).view(B, NH, T, T)
                w = apply(w, keep_mask(state.seed, 1 + 3 * l, idx, p_att), p_att)
            else:  # [CLS]'s query only: index ((b * NH + h) * 1 + 0) * T + k; the other rows as they are
                idx = torch.arange(B * NH * T, dtype=torch.int64).view(B, NH, 1, T)
                cls = apply(w[:, :, :1, :], keep_mask(state.seed, 1 + 3 * l, idx, p_att), p_att)
                w = torch.cat([cls, w[:, :, 1:, :]], dim=2)
        out = torch.matmul(w, value).transpose(1, 2).contiguous()
        return out, w

    transformers.AttentionInterface.register("bertc_replay", attention)
    # the mask as eager attention gets it (additive, finfo.min on padding), not sdpa's booleans
    from transformers.masking_utils import AttentionMaskInterface, eager_mask
    AttentionMaskInterface.register("bertc_replay", eager_mask)
    model.set_attn_implementation("bertc_replay")
    return state


if __name__ == "__main__":
    # the hash against Python integers
    for seed, stream, i in ((42, 0, 0), (mix64_int(7), 5, 123456789), (M64, 31, (1 << 40) + 3)):
        h = mix64_int(seed ^ mix64_int((stream * GOLDEN + i) & M64))
        want = (h >> 40) * (1.0 / 16777216.0) >= 0.3
        got = bool(keep_mask(seed, stream, torch.tensor([i], dtype=torch.int64), 0.3)[0])
        assert want == got, (seed, stream, i)
        hv = _mix64(_mix64(torch.tensor([i], dtype=torch.int64) + _i64(stream * GOLDEN)) ^ _i64(seed))
        assert int(hv[0]) & M64 == h, (seed, stream, i)
    print("bertc_dropout: the hash agrees with the integer version")
