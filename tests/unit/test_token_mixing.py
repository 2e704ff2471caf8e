"""Token mixing and global attention: every output token depends on every input token, so the
RF from there on is the whole input, exact (before: a Linear over tokens or an attention was
taken as squeeze-and-excitation gating, and the RF stayed the patch size).  Checked against
the brute-force dependency oracle on small patch-embedded nets."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import rfcheck
from tests.oracle import rf_box, rf_sizes

SIZE = (3, 8, 8)  # a 2x2 patch embedding: 4x4 = 16 tokens of 8 channels


class Tokens(nn.Module):
    """Patch embedding, a token mixer, the residual, and the tokens back as a 4x4 map."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.embed = nn.Conv2d(3, 8, 2, stride=2)
        self.token_mlp = nn.Linear(16, 16)
        self.token_up, self.token_down = nn.Linear(16, 24), nn.Linear(24, 16)  # MLP-Mixer's hidden size
        self.token_glu = nn.Linear(16, 48)  # gMixer: a gated hidden layer, chunked in two
        self.qkv = nn.Linear(8, 24)
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)         # B, 16, 8
        if self.kind == "mixer":
            y = self.token_mlp(t.transpose(1, 2)).transpose(1, 2)
        elif self.kind == "mixer_hidden":
            y = self.token_down(F.gelu(self.token_up(t.transpose(1, 2)))).transpose(1, 2)
        elif self.kind == "gmixer":
            a, b = self.token_glu(t.transpose(1, 2)).chunk(2, dim=-1)
            y = self.token_down(a * torch.sigmoid(b)).transpose(1, 2)
        elif self.kind == "mha":
            y = self.mha(t, t, t, need_weights=False)[0]
        else:
            q, k, v = self.qkv(t).chunk(3, dim=-1)
            if self.kind == "sdpa":
                y = F.scaled_dot_product_attention(q, k, v)
            else:
                y = (q @ k.transpose(-2, -1) / 8 ** 0.5).softmax(-1) @ v
        t = t + y
        return t.transpose(1, 2).reshape(x.shape[0], 8, 4, 4)


@pytest.mark.parametrize("kind", ["mixer", "mixer_hidden", "gmixer", "mha", "sdpa", "matmul"])
def test_every_token_sees_the_whole_input(kind):
    m = Tokens(kind)
    assert rf_box(m, SIZE) == (8, 8)  # the oracle: each output unit depends on all 8x8 pixels
    r = rfcheck.analyze(m, SIZE)
    assert r.exact and r.rf.size == (8, 8) and r.rf.min == (2, 2)  # the residual keeps the patch path
    assert not [w for w in r.warnings if w.code == "RF203"]  # not squeeze-and-excitation gating


class Patches(nn.Module):
    """Without a mixer the tokens keep the patch RF: 2x2."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 2, stride=2)
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        t = self.fc(self.embed(x).flatten(2).transpose(1, 2))
        return t.transpose(1, 2).reshape(x.shape[0], 8, 4, 4)


def test_a_linear_over_channels_is_no_token_mixer():
    assert rf_box(Patches(), SIZE) == (2, 2)
    r = rfcheck.analyze(Patches(), SIZE)
    assert r.exact and r.rf.size == (2, 2)


class ViT(nn.Module):
    """A class token, position embeddings, one attention layer, the head on the class token."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 2, stride=2)
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.pos = nn.Parameter(torch.zeros(1, 17, 8))
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1) + self.pos
        t = t + self.attn(t, t, t, need_weights=False)[0]
        return self.head(t[:, 0])


def test_vit_style_class_token_is_followed_exactly():
    m = ViT()
    assert rf_box(m, SIZE) == (8, 8)
    r = rfcheck.analyze(m, SIZE)
    assert r.exact and r.rf.size == (8, 8)


def test_masked_attention_is_a_bound():
    class Causal(Tokens):
        def forward(self, x):
            t = self.embed(x).flatten(2).transpose(1, 2)
            q, k, v = self.qkv(t).chunk(3, dim=-1)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    r = rfcheck.analyze(Causal("sdpa"), SIZE)
    assert not r.exact and any(w.code == "RF104" for w in r.warnings)


class Recurrent(nn.Module):
    """A sequence model over the positions of a 1D map: a ReLU RNN (no saturation: the oracle's
    positive weights keep every step in its linear range), then a conv of 2."""

    def __init__(self, bidirectional: bool, cell: str = "rnn"):
        super().__init__()
        self.embed = nn.Conv1d(1, 4, 1)
        d = 2 if bidirectional else 1
        self.rnn = (nn.RNN(4, 4, nonlinearity="relu", batch_first=True, bidirectional=bidirectional) if cell == "rnn"
                    else nn.LSTM(4, 4, batch_first=True, bidirectional=bidirectional))
        self.head = nn.Conv1d(4 * d, 1, 2)

    def forward(self, x):
        y, _ = self.rnn(self.embed(x).transpose(1, 2))
        return self.head(y.transpose(1, 2))


def test_a_bidirectional_recurrence_sees_the_whole_sequence():
    m = Recurrent(True)
    assert rf_sizes(m, (1, 8)) == [8] * 7  # every output unit reads all 8 positions
    r = rfcheck.analyze(m, (1, 8))
    assert r.exact and r.rf.size == (8,)
    lstm = rfcheck.analyze(Recurrent(True, "lstm"), (1, 8))  # (run as one layer: its shapes, not its forward)
    assert lstm.exact and lstm.rf.size == (8,) and lstm.params.total == sum(
        p.numel() for p in Recurrent(True, "lstm").parameters())


def test_a_one_directional_recurrence_is_a_named_bound():
    m = Recurrent(False)
    assert rf_sizes(m, (1, 8)) == [2, 3, 4, 5, 6, 7, 8]  # unit t reads positions 0 .. t+1
    r = rfcheck.analyze(m, (1, 8))
    assert r.rf.size == (8,) and not r.exact and "RF104" in {w.code for w in r.warnings}


class LinearAttention(nn.Module):
    """EfficientViT's linear attention: relu(q) @ (relu(k).T @ v), the keys reduced first."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 2, stride=2)
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        y = F.relu(q) @ (F.relu(k).transpose(-2, -1) @ v)
        return y.transpose(1, 2).reshape(x.shape[0], 8, 4, 4)


def test_linear_attention_sees_the_whole_input():
    m = LinearAttention()
    assert rf_box(m, SIZE) == (8, 8)
    r = rfcheck.analyze(m, SIZE)
    assert r.exact and r.rf.size == (8, 8) and not [w for w in r.warnings if w.code == "RF203"]


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("batch_first,bidirectional,batched", [(True, True, True), (False, False, True),
                                                               (True, False, False), (False, True, False)])
def test_recurrent_layers_give_the_shapes_their_forward_gives(cell, batch_first, bidirectional, batched):
    from rfcheck.ops import _recurrent_outputs
    kw = {"proj_size": 2} if cell is nn.LSTM and bidirectional else {}  # (LSTM's projection: h is 2 wide, c 3)
    m = cell(4, 3, num_layers=2, batch_first=batch_first, bidirectional=bidirectional, **kw)
    x = torch.randn((2, 5, 4) if batched else (5, 4))
    real = m(x)
    meta = _recurrent_outputs(m, x.to("meta"))

    def shapes(o):
        return [tuple(t.shape) for t in (o if isinstance(o, tuple) else (o,)) for t in (t if isinstance(t, tuple) else (t,))]
    assert shapes(meta) == shapes(real)
