"""Networks of the latent text-to-image models (Fashion-MNIST, 28x28x1 -> 4x7x7 latents).

Plain nn.Modules for PyTorch 1.13 and 2.x that export to ONNX with the classic TorchScript
exporter (attention as explicit MatMul + Softmax, no scaled_dot_product_attention).

  VAE          KL-regularised autoencoder, Stable Diffusion's AutoencoderKL in miniature
               (Rombach et al. 2022, sec. 3.1 / appendix G): GroupNorm+SiLU ResNet blocks, two stride-2
               downsamples (factor 4), a diagonal Gaussian posterior with mean and log-variance.
  TextEncoder  tiny CLIP-like text transformer (Radford et al. 2021): token + position embedding,
               pre-LN blocks with a causal mask, final LayerNorm; pooled = the state at the first EOS
               (CLIP's argmax(input_ids) rule, since EOS 49407 is the largest id).
  CondUNet     SD-style U-Net: ResNet blocks + Transformer blocks (self-attention, cross-attention to
               the text states, GEGLU feed-forward), 7x7 -> 4x4 -> 7x7, epsilon prediction.
  FlowDiT      SD3-style MMDiT (Esser et al. 2024, sec. 4): joint attention over image and text tokens
               with separate weights per stream, adaLN conditioning on timestep + pooled text,
               patch size 1, velocity prediction for rectified flow.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CLIP_VOCAB = 49408
CLIP_EOS = 49407


def count_params(m):
    return sum(p.numel() for p in m.parameters())


def _gn(ch, groups=8):
    return nn.GroupNorm(groups if ch % groups == 0 else 1, ch, eps=1e-6)


# ---------------------------------------------------------------------------- VAE


class VAEResBlock(nn.Module):
    """diffusers' ResnetBlock2D without a time embedding: x + conv(silu(gn(conv(silu(gn(x))))))."""

    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = _gn(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _gn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class VAEEncoder(nn.Module):
    """[B,1,H,W] -> latent_parameters [B, 2*latent, H/4, W/4] (mean ++ logvar, quant_conv applied)."""

    def __init__(self, in_ch=1, chans=(16, 32, 64), latent=4, layers=1):
        super().__init__()
        self.conv_in = nn.Conv2d(in_ch, chans[0], 3, padding=1)
        blocks = []
        c = chans[0]
        for i, co in enumerate(chans):
            for _ in range(layers):
                blocks.append(VAEResBlock(c, co))
                c = co
            if i < len(chans) - 1:
                blocks.append(nn.Conv2d(c, c, 3, stride=2, padding=1))  # 28 -> 14 -> 7
        self.blocks = nn.Sequential(*blocks)
        self.mid = nn.Sequential(VAEResBlock(c, c), VAEResBlock(c, c))
        self.norm_out = _gn(c)
        self.conv_out = nn.Conv2d(c, 2 * latent, 3, padding=1)
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1)

    def forward(self, x):
        h = self.mid(self.blocks(self.conv_in(x)))
        return self.quant_conv(self.conv_out(F.silu(self.norm_out(h))))


class VAEDecoder(nn.Module):
    """latent_sample [B,latent,h,w] -> sample [B,1,4h,4w] (the unscaled latent, as diffusers' decode)."""

    def __init__(self, out_ch=1, chans=(16, 32, 64), latent=4, layers=1):
        super().__init__()
        rc = list(reversed(chans))
        self.post_quant_conv = nn.Conv2d(latent, latent, 1)
        self.conv_in = nn.Conv2d(latent, rc[0], 3, padding=1)
        self.mid = nn.Sequential(VAEResBlock(rc[0], rc[0]), VAEResBlock(rc[0], rc[0]))
        self.up = nn.ModuleList()
        c = rc[0]
        for i, co in enumerate(rc):
            blk = [VAEResBlock(c if j == 0 else co, co) for j in range(layers + 1)]
            c = co
            ups = nn.Conv2d(c, c, 3, padding=1) if i < len(rc) - 1 else None
            self.up.append(nn.ModuleDict(dict(res=nn.Sequential(*blk), **({"upconv": ups} if ups is not None else {}))))
        self.norm_out = _gn(c)
        self.conv_out = nn.Conv2d(c, out_ch, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(self.post_quant_conv(z)))
        for blk in self.up:
            h = blk["res"](h)
            if "upconv" in blk:
                h = blk["upconv"](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class VAE(nn.Module):
    def __init__(self, chans=(16, 32, 64), latent=4, layers=1):
        super().__init__()
        self.config = dict(chans=list(chans), latent=latent, layers=layers)
        self.encoder = VAEEncoder(1, chans, latent, layers)
        self.decoder = VAEDecoder(1, chans, latent, layers)
        self.latent = latent

    def encode(self, x):
        p = self.encoder(x)
        mean, logvar = p[:, : self.latent], p[:, self.latent:].clamp(-30.0, 20.0)
        return mean, logvar

    def forward(self, x):
        mean, logvar = self.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return self.decoder(z), mean, logvar


# ---------------------------------------------------------------------------- shared pieces


def sinusoidal(t, dim, max_period=10000.0):
    """diffusers' get_timestep_embedding with flip_sin_to_cos=True, downscale_freq_shift=0: [cos, sin], [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def attention(q, k, v, heads, mask=None):
    """Multi-head softmax(q k^T / sqrt(d) + mask) v on [B, N, C] / [B, M, C] (explicit MatMul + Softmax)."""
    B, N, C = q.shape
    M = k.shape[1]
    d = C // heads
    q = q.reshape(B, N, heads, d).transpose(1, 2)
    k = k.reshape(B, M, heads, d).transpose(1, 2)
    v = v.reshape(B, M, heads, d).transpose(1, 2)
    w = torch.matmul(q, k.transpose(-1, -2)) * (d ** -0.5)
    if mask is not None:
        w = w + mask
    w = torch.softmax(w, dim=-1)
    return torch.matmul(w, v).transpose(1, 2).reshape(B, N, C)


# ---------------------------------------------------------------------------- text encoder


class CLIPLayer(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x, mask):
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        x = x + self.out(attention(q, k, v, self.heads, mask))
        h = self.fc1(self.ln2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))  # quick_gelu, as CLIP


class TextEncoder(nn.Module):
    """Tiny CLIP-like text transformer over CLIP BPE ids.

    The embedding table holds only the ids of the training captions (`used_ids`) plus one shared row
    for every other id: a lookup [vocab] -> row (a 49408-entry int64 table, 0.4 MB) replaces CLIP's
    49408 x width table (12.6 MB at width 64), so any CLIP id is a valid input. Prompts made of words
    outside the captions all map to that one row (the model knows only the training vocabulary).
    Outputs last_hidden_state [B, L, dim] (after the final LayerNorm) and pooler_output [B, dim] =
    the state at the first EOS (argmax of input_ids, as CLIPTextModel with eos_token_id 2).
    """

    def __init__(self, used_ids, vocab=CLIP_VOCAB, max_len=16, dim=64, layers=2, heads=4, mlp=256):
        super().__init__()
        used = sorted(set(int(i) for i in used_ids))
        self.config = dict(used_ids=used, vocab=vocab, max_len=max_len, dim=dim, layers=layers, heads=heads, mlp=mlp)
        remap = torch.full((vocab,), len(used), dtype=torch.long)
        remap[torch.tensor(used)] = torch.arange(len(used))
        self.register_buffer("remap", remap)
        self.tok = nn.Embedding(len(used) + 1, dim)
        self.pos = nn.Parameter(torch.zeros(max_len, dim))
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.01)
        self.layers = nn.ModuleList([CLIPLayer(dim, heads, mlp) for _ in range(layers)])
        self.ln_final = nn.LayerNorm(dim)
        self.register_buffer("causal", torch.triu(torch.full((max_len, max_len), -1e9), diagonal=1))

    def forward(self, input_ids):
        L = input_ids.shape[1]
        x = self.tok(self.remap[input_ids]) + self.pos[:L][None]
        mask = self.causal[:L, :L]
        for layer in self.layers:
            x = layer(x, mask)
        x = self.ln_final(x)
        eos = input_ids.argmax(dim=-1)
        onehot = (torch.arange(L)[None, :] == eos[:, None]).to(x.dtype)
        pooled = (onehot[:, :, None] * x).sum(dim=1)
        return x, pooled


# ---------------------------------------------------------------------------- U-Net


class ResBlock(nn.Module):
    """diffusers' ResnetBlock2D with the time embedding added after the first conv."""

    def __init__(self, cin, cout, temb):
        super().__init__()
        self.norm1 = _gn(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout)
        self.norm2 = _gn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x))) + self.temb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Transformer2D(nn.Module):
    """diffusers' Transformer2DModel with one BasicTransformerBlock: GN, proj_in, LN + self-attention,
    LN + cross-attention to the text states, LN + GEGLU feed-forward (each a residual), proj_out, + x."""

    def __init__(self, ch, ctx, heads, ff_mult=2):
        super().__init__()
        self.heads = heads
        self.norm = _gn(ch)
        self.proj_in = nn.Linear(ch, ch)
        self.ln1 = nn.LayerNorm(ch)
        self.qkv1 = nn.Linear(ch, 3 * ch, bias=False)
        self.out1 = nn.Linear(ch, ch)
        self.ln2 = nn.LayerNorm(ch)
        self.q2 = nn.Linear(ch, ch, bias=False)
        self.kv2 = nn.Linear(ctx, 2 * ch, bias=False)
        self.out2 = nn.Linear(ch, ch)
        self.ln3 = nn.LayerNorm(ch)
        self.ff_in = nn.Linear(ch, 2 * ff_mult * ch)
        self.ff_out = nn.Linear(ff_mult * ch, ch)
        self.proj_out = nn.Linear(ch, ch)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x, ctx):
        B, C, H, W = x.shape
        h = self.proj_in(self.norm(x).reshape(B, C, H * W).transpose(1, 2))
        q, k, v = self.qkv1(self.ln1(h)).chunk(3, dim=-1)
        h = h + self.out1(attention(q, k, v, self.heads))
        k, v = self.kv2(ctx).chunk(2, dim=-1)
        h = h + self.out2(attention(self.q2(self.ln2(h)), k, v, self.heads))
        a, g = self.ff_in(self.ln3(h)).chunk(2, dim=-1)
        h = h + self.ff_out(a * F.gelu(g))
        h = self.proj_out(h).transpose(1, 2).reshape(B, C, H, W)
        return x + h


class CondUNet(nn.Module):
    """SD-style text-conditioned U-Net on 4 x 7 x 7 latents: two levels (7x7 at `ch`, 4x4 at 2*ch; the
    stride-2 conv with padding 1 maps 7 -> 4, the up path resizes back to the skip's size), each level
    a ResNet block + a cross-attention Transformer block, a mid block Res-Transformer-Res, skip
    concatenation. (sample, timestep, encoder_hidden_states) -> predicted noise epsilon."""

    def __init__(self, latent=4, ch=32, ctx=64, heads=4, temb=128, ff_mult=2, attn7=False):
        super().__init__()
        self.config = dict(latent=latent, ch=ch, ctx=ctx, heads=heads, temb=temb, ff_mult=ff_mult, attn7=attn7)
        c1, c2 = ch, 2 * ch
        self.tdim = c1
        self.time_mlp = nn.Sequential(nn.Linear(c1, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(latent, c1, 3, padding=1)
        self.down0_res = ResBlock(c1, c1, temb)
        self.down0_attn = Transformer2D(c1, ctx, heads, ff_mult) if attn7 else None
        self.down = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.down1_res = ResBlock(c1, c2, temb)
        self.down1_attn = Transformer2D(c2, ctx, heads, ff_mult)
        self.mid_res1 = ResBlock(c2, c2, temb)
        self.mid_attn = Transformer2D(c2, ctx, heads, ff_mult)
        self.mid_res2 = ResBlock(c2, c2, temb)
        self.up1_res = ResBlock(2 * c2, c2, temb)
        self.up1_attn = Transformer2D(c2, ctx, heads, ff_mult)
        self.up = nn.Conv2d(c2, c2, 3, padding=1)
        self.up0_res = ResBlock(c2 + c1, c1, temb)
        self.up0_attn = Transformer2D(c1, ctx, heads, ff_mult) if attn7 else None
        self.norm_out = _gn(c1)
        self.conv_out = nn.Conv2d(c1, latent, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, sample, timestep, encoder_hidden_states):
        B = sample.shape[0]
        t = timestep.reshape(-1).expand(B)  # a 0-d timestep (Optimum's UNet export) or one per row
        emb = self.time_mlp(sinusoidal(t, self.tdim))
        ctx = encoder_hidden_states
        h0 = self.down0_res(self.conv_in(sample), emb)
        if self.down0_attn is not None:
            h0 = self.down0_attn(h0, ctx)
        h1 = self.down1_attn(self.down1_res(self.down(h0), emb), ctx)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h1, emb), ctx), emb)
        h = self.up1_attn(self.up1_res(torch.cat([h, h1], 1), emb), ctx)
        h = self.up(F.interpolate(h, size=(h0.shape[2], h0.shape[3]), mode="nearest"))
        h = self.up0_res(torch.cat([h, h0], 1), emb)
        if self.up0_attn is not None:
            h = self.up0_attn(h, ctx)
        return self.conv_out(F.silu(self.norm_out(h)))


# ---------------------------------------------------------------------------- flow DiT (MMDiT)


class LayerNormNoAffine(nn.Module):
    """LayerNorm without learned scale/shift. Same maths as nn.LayerNorm(elementwise_affine=False), but with constant
    (non-persistent) ones/zeros as weight and bias: torch 1.13's exporter writes an invalid LayerNormalization
    (empty scale input) for the affine-free module."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.register_buffer("w", torch.ones(dim), persistent=False)
        self.register_buffer("b", torch.zeros(dim), persistent=False)

    def forward(self, x):
        return F.layer_norm(x, (self.dim,), self.w, self.b, self.eps)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class JointBlock(nn.Module):
    """SD3's JointTransformerBlock: per stream adaLN-Zero (shift, scale, gate for attention and MLP),
    joint attention over [image tokens; text tokens] with separate q/k/v/out weights per stream,
    GELU MLPs. The last block is `context_pre_only`: the text stream only feeds the attention."""

    def __init__(self, dim, heads, mlp_ratio=4, context_pre_only=False):
        super().__init__()
        self.heads = heads
        self.pre_only = context_pre_only
        self.ada_x = nn.Linear(dim, 6 * dim)
        self.ada_c = nn.Linear(dim, (2 if context_pre_only else 6) * dim)
        self.norm_x1 = LayerNormNoAffine(dim)
        self.norm_c1 = LayerNormNoAffine(dim)
        self.qkv_x = nn.Linear(dim, 3 * dim)
        self.qkv_c = nn.Linear(dim, 3 * dim)
        self.out_x = nn.Linear(dim, dim)
        self.norm_x2 = LayerNormNoAffine(dim)
        self.mlp_x = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_ratio * dim, dim))
        if not context_pre_only:
            self.out_c = nn.Linear(dim, dim)
            self.norm_c2 = LayerNormNoAffine(dim)
            self.mlp_c = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_ratio * dim, dim))
        for m in (self.ada_x, self.ada_c):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x, c, cond):
        e = F.silu(cond)
        sx, scx, gx, sx2, scx2, gx2 = self.ada_x(e).chunk(6, dim=-1)
        N = x.shape[1]
        if self.pre_only:
            sc, scc = self.ada_c(e).chunk(2, dim=-1)
        else:
            sc, scc, gc, sc2, scc2, gc2 = self.ada_c(e).chunk(6, dim=-1)
        qx, kx, vx = self.qkv_x(modulate(self.norm_x1(x), sx, scx)).chunk(3, dim=-1)
        qc, kc, vc = self.qkv_c(modulate(self.norm_c1(c), sc, scc)).chunk(3, dim=-1)
        a = attention(torch.cat([qx, qc], 1), torch.cat([kx, kc], 1), torch.cat([vx, vc], 1), self.heads)
        ax, ac = a[:, :N], a[:, N:]
        x = x + gx[:, None] * self.out_x(ax)
        x = x + gx2[:, None] * self.mlp_x(modulate(self.norm_x2(x), sx2, scx2))
        if self.pre_only:
            return x, c
        c = c + gc[:, None] * self.out_c(ac)
        c = c + gc2[:, None] * self.mlp_c(modulate(self.norm_c2(c), sc2, scc2))
        return x, c


class FlowDiT(nn.Module):
    """SD3-style MMDiT on 4 x 7 x 7 latents, patch size 1 (49 image tokens) with a learned position
    embedding; text tokens via context_embedder; conditioning vector = MLP(sinusoidal(timestep)) +
    MLP(pooled text) (SD3's CombinedTimestepTextProjEmbeddings); final AdaLayerNormContinuous + linear.
    (hidden_states, encoder_hidden_states, pooled_projections, timestep = sigma*1000) -> velocity eps - x0."""

    def __init__(self, latent=4, size=7, dim=96, depth=5, heads=4, ctx=64, pooled=64, mlp_ratio=4):
        super().__init__()
        self.config = dict(latent=latent, size=size, dim=dim, depth=depth, heads=heads, ctx=ctx, pooled=pooled, mlp_ratio=mlp_ratio)
        self.latent, self.size, self.dim = latent, size, dim
        self.x_embed = nn.Linear(latent, dim)
        self.pos = nn.Parameter(torch.randn(1, size * size, dim) * 0.02)
        self.c_embed = nn.Linear(ctx, dim)
        self.t_mlp = nn.Sequential(nn.Linear(128, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.p_mlp = nn.Sequential(nn.Linear(pooled, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList([JointBlock(dim, heads, mlp_ratio, context_pre_only=(i == depth - 1)) for i in range(depth)])
        self.norm_out = LayerNormNoAffine(dim)
        self.ada_out = nn.Linear(dim, 2 * dim)
        self.proj_out = nn.Linear(dim, latent)
        for m in (self.ada_out, self.proj_out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, hidden_states, encoder_hidden_states, pooled_projections, timestep):
        B, C, H, W = hidden_states.shape
        x = self.x_embed(hidden_states.reshape(B, C, H * W).transpose(1, 2)) + self.pos
        c = self.c_embed(encoder_hidden_states)
        cond = self.t_mlp(sinusoidal(timestep.reshape(-1).expand(B), 128)) + self.p_mlp(pooled_projections)
        for blk in self.blocks:
            x, c = blk(x, c, cond)
        scale, shift = self.ada_out(F.silu(cond)).chunk(2, dim=-1)  # diffusers' AdaLayerNormContinuous order
        x = self.proj_out(modulate(self.norm_out(x), shift, scale))
        return x.transpose(1, 2).reshape(B, C, H, W)
