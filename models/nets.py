"""Model definitions for the rediffuse Fashion-MNIST models.

Plain nn.Modules that run on PyTorch 1.13 and 2.x alike and export to ONNX
(opset 17) with the classic TorchScript exporter: no scaled_dot_product_attention,
no torch.compile, attention written as explicit MatMul + Softmax.

  UNet        DDPM-style class-conditional U-Net (epsilon prediction)
  DiT         small class-conditional Diffusion Transformer with adaLN-Zero
  Classifier  CNN for Fashion-MNIST with `logits` and `features` outputs

Diffusion models take (sample [B,1,28,28] float32, timestep [B] float, class_labels
[B] int64 with 10 = null label) and return the predicted noise [B,1,28,28].
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 10
NULL_LABEL = 10


def timestep_embedding(t, dim, max_period=10000.0):
    """Sinusoidal embedding of a (possibly fractional) timestep, [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def _groups(ch):
    return 8 if ch % 8 == 0 else 1


class TimeClassEmbedding(nn.Module):
    """sinusoidal(t) -> MLP, plus a learned class embedding (10 classes + null)."""

    def __init__(self, base_dim, emb_dim, num_classes=NUM_CLASSES):
        super().__init__()
        self.base_dim = base_dim
        self.mlp = nn.Sequential(nn.Linear(base_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim)

    def forward(self, t, y):
        return self.mlp(timestep_embedding(t, self.base_dim)) + self.class_emb(y)


# ---------------------------------------------------------------------------- U-Net


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb_dim, dropout=0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Spatial self-attention with explicit matmul/softmax."""

    def __init__(self, ch, heads=4):
        super().__init__()
        assert ch % heads == 0
        self.heads = heads
        self.norm = nn.GroupNorm(_groups(ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        b, c, hh, ww = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, d, hh * ww)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # [B, heads, d, N]
        attn = torch.matmul(q.transpose(-1, -2), k) * (1.0 / math.sqrt(d))  # [B, heads, N, N]
        attn = torch.softmax(attn, dim=-1)
        out = torch.matmul(v, attn.transpose(-1, -2))  # [B, heads, d, N]
        return x + self.proj(out.reshape(b, c, hh, ww))


class Downsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """DDPM-style U-Net: 28 -> 14 -> 7, attention at 7x7, skip concatenation."""

    def __init__(self, in_ch=1, base=32, mults=(1, 2, 2), num_res=1, attn_levels=(2,),
                 heads=4, dropout=0.0, num_classes=NUM_CLASSES):
        super().__init__()
        self.config = dict(in_ch=in_ch, base=base, mults=list(mults), num_res=num_res,
                           attn_levels=list(attn_levels), heads=heads, dropout=dropout,
                           num_classes=num_classes)
        emb_dim = base * 4
        self.emb = TimeClassEmbedding(base, emb_dim, num_classes)
        self.conv_in = nn.Conv2d(in_ch, base, 3, padding=1)

        chans = [base * m for m in mults]
        self.down = nn.ModuleList()
        skip_ch = [base]
        ch = base
        for lvl, cout in enumerate(chans):
            for _ in range(num_res):
                self.down.append(ResBlock(ch, cout, emb_dim, dropout))
                ch = cout
                if lvl in attn_levels:
                    self.down.append(AttnBlock(ch, heads))
                skip_ch.append(ch)
            if lvl != len(chans) - 1:
                self.down.append(Downsample(ch))
                skip_ch.append(ch)

        self.mid1 = ResBlock(ch, ch, emb_dim, dropout)
        self.mid_attn = AttnBlock(ch, heads)
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout)

        self.up = nn.ModuleList()
        for lvl in reversed(range(len(chans))):
            cout = chans[lvl]
            for _ in range(num_res + 1):
                self.up.append(ResBlock(ch + skip_ch.pop(), cout, emb_dim, dropout))
                ch = cout
                if lvl in attn_levels:
                    self.up.append(AttnBlock(ch, heads))
            if lvl != 0:
                self.up.append(Upsample(ch))

        self.norm_out = nn.GroupNorm(_groups(ch), ch)
        self.conv_out = nn.Conv2d(ch, in_ch, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, sample, timestep, class_labels):
        emb = self.emb(timestep, class_labels)
        h = self.conv_in(sample)
        hs = [h]
        for m in self.down:
            if isinstance(m, ResBlock):
                h = m(h, emb)
                hs.append(h)
            elif isinstance(m, AttnBlock):
                h = m(h)
                hs[-1] = h
            else:
                h = m(h)
                hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for m in self.up:
            if isinstance(m, ResBlock):
                h = m(torch.cat([h, hs.pop()], dim=1), emb)
            else:
                h = m(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# ---------------------------------------------------------------------------- DiT


def _sincos_pos_embed_2d(dim, grid):
    """Fixed 2-D sin-cos position embedding, [grid*grid, dim] (as in DiT/MAE)."""
    assert dim % 4 == 0
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64),
                            torch.arange(grid, dtype=torch.float64), indexing="ij")

    def emb1d(pos, d):
        omega = 1.0 / (10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0)))
        out = pos.reshape(-1)[:, None] * omega[None, :]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    return torch.cat([emb1d(ys, dim // 2), emb1d(xs, dim // 2)], dim=1).float()


class LayerNormNoAffine(nn.Module):
    """LayerNorm without learned affine. Passes explicit ones/zeros (non-persistent
    buffers, so state_dicts match nn.LayerNorm(elementwise_affine=False)) because the
    torch 1.13 ONNX exporter emits an invalid LayerNormalization when weight is None."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.register_buffer("ones", torch.ones(dim), persistent=False)
        self.register_buffer("zeros", torch.zeros(dim), persistent=False)

    def forward(self, x):
        return F.layer_norm(x, (self.dim,), self.ones, self.zeros, self.eps)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        d = c // self.heads
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, heads, N, d]
        attn = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d)), dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class DiTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = LayerNormNoAffine(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = LayerNormNoAffine(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x, c):
        sh_a, sc_a, g_a, sh_m, sc_m, g_m = self.ada(c).chunk(6, dim=1)
        x = x + g_a[:, None, :] * self.attn(modulate(self.norm1(x), sh_a, sc_a))
        x = x + g_m[:, None, :] * self.mlp(modulate(self.norm2(x), sh_m, sc_m))
        return x


class DiT(nn.Module):
    """Small DiT: 28x28 image, patch 4 -> 7x7 = 49 tokens, adaLN-Zero blocks."""

    def __init__(self, in_ch=1, image=28, patch=4, dim=192, depth=6, heads=4, mlp_ratio=4.0,
                 num_classes=NUM_CLASSES):
        super().__init__()
        self.config = dict(in_ch=in_ch, image=image, patch=patch, dim=dim, depth=depth, heads=heads,
                           mlp_ratio=mlp_ratio, num_classes=num_classes)
        assert image % patch == 0
        self.in_ch, self.patch, self.grid = in_ch, patch, image // patch
        self.x_embed = nn.Conv2d(in_ch, dim, patch, stride=patch)
        self.register_buffer("pos_embed", _sincos_pos_embed_2d(dim, self.grid)[None], persistent=False)
        self.t_base = 256
        self.t_mlp = nn.Sequential(nn.Linear(self.t_base, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.class_emb = nn.Embedding(num_classes + 1, dim)
        self.blocks = nn.ModuleList([DiTBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm_f = LayerNormNoAffine(dim, eps=1e-6)
        self.ada_f = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.out = nn.Linear(dim, patch * patch * in_ch)
        self._init()

    def _init(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.x_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embed.bias)
        nn.init.normal_(self.class_emb.weight, std=0.02)
        nn.init.normal_(self.t_mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_mlp[2].weight, std=0.02)
        for blk in self.blocks:
            nn.init.zeros_(blk.ada[1].weight)
            nn.init.zeros_(blk.ada[1].bias)
        for m in (self.ada_f[1], self.out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, sample, timestep, class_labels):
        b = sample.shape[0]
        x = self.x_embed(sample).flatten(2).transpose(1, 2) + self.pos_embed  # [B, N, dim]
        c = self.t_mlp(timestep_embedding(timestep, self.t_base)) + self.class_emb(class_labels)
        for blk in self.blocks:
            x = blk(x, c)
        shift, scale = self.ada_f(c).chunk(2, dim=1)
        x = self.out(modulate(self.norm_f(x), shift, scale))  # [B, N, p*p*C]
        p, g = self.patch, self.grid
        x = x.reshape(b, g, g, p, p, self.in_ch).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, self.in_ch, g * p, g * p)


# ---------------------------------------------------------------------------- classifier


class Classifier(nn.Module):
    """CNN for Fashion-MNIST; forward returns (logits [B,10], features [B,feat_dim])."""

    def __init__(self, feat_dim=128, width=64, num_classes=NUM_CLASSES):
        super().__init__()
        self.config = dict(feat_dim=feat_dim, width=width, num_classes=num_classes)
        w = width

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *block(1, w), *block(w, w), nn.MaxPool2d(2),            # 14
            *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),  # 7
            *block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Dropout(0.3),
        )
        self.fc = nn.Sequential(nn.Linear(4 * w, feat_dim), nn.BatchNorm1d(feat_dim), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(feat_dim, num_classes)

    def forward(self, images):
        feats = self.fc(self.body(images))
        return self.head(self.drop(feats)), feats


def build(arch, **kw):
    if arch == "unet":
        return UNet(**kw)
    if arch == "dit":
        return DiT(**kw)
    if arch == "classifier":
        return Classifier(**kw)
    raise ValueError(arch)


def count_params(model):
    return sum(p.numel() for p in model.parameters())
