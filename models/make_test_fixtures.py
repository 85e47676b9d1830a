"""Tiny random-weight ONNX models for the TypeScript model layer's tests (seeded, < 1 MB).

  /usr/bin/python3 models/make_test_fixtures.py [--out test/fixtures]

  tiny-sd-unet.onnx    Stable-Diffusion-style signature: sample [B,4,8,8] f32, timestep [B] int64,
                       encoder_hidden_states [B,7,32] f32 -> out_sample [B,4,8,8]. ResNet blocks
                       (GroupNorm, SiLU, conv, time-emb add, residual), a Transformer2D block
                       (self-attn, cross-attn to encoder_hidden_states, GEGLU feed-forward, each
                       with residual add, like diffusers' BasicTransformerBlock), one down and
                       one up level with skip concatenation.
  tiny-unet-f16t.onnx  fashion U-Net signature (sample [B,1,28,28] f32, timestep [B] float16,
                       class_labels [B] int64 -> out_sample), tiny.
  tiny-unet-i64t.onnx  the same with timestep [B] int64.
"""
import argparse
import json
import math
import os
import sys

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nets  # noqa: E402
from nets import ResBlock, Downsample, Upsample, timestep_embedding  # noqa: E402


class CrossAttention(nn.Module):
    def __init__(self, dim, ctx_dim=None, heads=2):
        super().__init__()
        ctx_dim = ctx_dim or dim
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(ctx_dim, dim, bias=False)
        self.to_v = nn.Linear(ctx_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, ctx=None):
        ctx = x if ctx is None else ctx
        b, n, c = x.shape
        m = ctx.shape[1]
        d = c // self.heads
        q = self.to_q(x).reshape(b, n, self.heads, d).transpose(1, 2)
        k = self.to_k(ctx).reshape(b, m, self.heads, d).transpose(1, 2)
        v = self.to_v(ctx).reshape(b, m, self.heads, d).transpose(1, 2)
        a = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d)), dim=-1)
        return self.to_out(torch.matmul(a, v).transpose(1, 2).reshape(b, n, c))


class GEGLU(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * hidden)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, ctx_dim, heads=2):
        super().__init__()
        self.norm1, self.attn1 = nn.LayerNorm(dim), CrossAttention(dim, None, heads)
        self.norm2, self.attn2 = nn.LayerNorm(dim), CrossAttention(dim, ctx_dim, heads)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(GEGLU(dim, 4 * dim), nn.Linear(4 * dim, dim))

    def forward(self, x, ctx):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), ctx) + x
        return self.ff(self.norm3(x)) + x


class Transformer2D(nn.Module):
    def __init__(self, ch, ctx_dim, heads=2):
        super().__init__()
        self.norm = nn.GroupNorm(8, ch, eps=1e-6)
        self.proj_in = nn.Conv2d(ch, ch, 1)
        self.block = BasicTransformerBlock(ch, ctx_dim, heads)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x, ctx):
        b, c, h, w = x.shape
        r = x
        x = self.proj_in(self.norm(x)).reshape(b, c, h * w).transpose(1, 2)
        x = self.block(x, ctx).transpose(1, 2).reshape(b, c, h, w)
        return self.proj_out(x) + r


class TinySDUNet(nn.Module):
    def __init__(self, ch=16, ctx_dim=32):
        super().__init__()
        emb = 4 * ch
        self.ch = ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.conv_in = nn.Conv2d(4, ch, 3, padding=1)
        self.down_res = ResBlock(ch, ch, emb)
        self.down_attn = Transformer2D(ch, ctx_dim)
        self.down = Downsample(ch)                      # 8 -> 4
        self.down_res2 = ResBlock(ch, 2 * ch, emb)
        self.mid_res = ResBlock(2 * ch, 2 * ch, emb)
        self.mid_attn = Transformer2D(2 * ch, ctx_dim)
        self.up_res2 = ResBlock(4 * ch, 2 * ch, emb)     # concat skip from down_res2
        self.up = Upsample(2 * ch)                       # 4 -> 8
        self.up_res = ResBlock(2 * ch + ch, ch, emb)     # concat skip from down_attn
        self.up_attn = Transformer2D(ch, ctx_dim)
        self.norm_out = nn.GroupNorm(8, ch)
        self.conv_out = nn.Conv2d(ch, 4, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        e = self.time_mlp(timestep_embedding(timestep, self.ch))
        h = self.conv_in(sample)
        h1 = self.down_attn(self.down_res(h, e), encoder_hidden_states)
        h2 = self.down_res2(self.down(h1), e)
        m = self.mid_attn(self.mid_res(h2, e), encoder_hidden_states)
        u = self.up(self.up_res2(torch.cat([m, h2], 1), e))
        u = self.up_attn(self.up_res(torch.cat([u, h1], 1), e), encoder_hidden_states)
        return self.conv_out(F.silu(self.norm_out(u)))


def tiny_fashion_unet():
    m = nets.UNet(base=8, mults=(1, 2), num_res=1, attn_levels=(1,), heads=2)
    nn.init.normal_(m.conv_out.weight, std=0.05)  # the real model zero-inits; tests want non-zero outputs
    nn.init.normal_(m.conv_out.bias, std=0.05)
    return m.eval()


def export(model, args, path, in_names, dyn_inputs):
    torch.onnx.export(model, args, path, opset_version=17, do_constant_folding=True, input_names=in_names,
                      output_names=["out_sample"],
                      dynamic_axes={**{k: {0: "batch"} for k in dyn_inputs}, "out_sample": {0: "batch"}})
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ins = {i.name: onnx.TensorProto.DataType.Name(i.type.tensor_type.elem_type) for i in m.graph.input}
    print(f"{path}: {os.path.getsize(path) / 1e3:.1f} kB, inputs {ins}")
    return ins


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "test", "fixtures"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    info = {}

    torch.manual_seed(1234)
    sd = TinySDUNet().eval()
    x = torch.randn(2, 4, 8, 8)
    t = torch.tensor([999, 10], dtype=torch.int64)
    ctx = torch.randn(2, 7, 32)
    p = os.path.join(args.out, "tiny-sd-unet.onnx")
    info["tiny-sd-unet.onnx"] = export(sd, (x, t, ctx), p, ["sample", "timestep", "encoder_hidden_states"],
                                       ["sample", "timestep", "encoder_hidden_states"])

    torch.manual_seed(4321)
    fu = tiny_fashion_unet()
    x = torch.randn(2, 1, 28, 28)
    y = torch.tensor([3, 10], dtype=torch.int64)
    for name, tt in (("tiny-unet-f16t.onnx", torch.tensor([999.0, 0.5], dtype=torch.float16)),
                     ("tiny-unet-i64t.onnx", torch.tensor([999, 1], dtype=torch.int64))):
        p = os.path.join(args.out, name)
        info[name] = export(fu, (x, tt, y), p, ["sample", "timestep", "class_labels"],
                            ["sample", "timestep", "class_labels"])
    print(json.dumps(info))


if __name__ == "__main__":
    main()
