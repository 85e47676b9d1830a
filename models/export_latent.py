"""Export the latent text-to-image models to ONNX pipeline folders in Optimum's layout.

  /usr/bin/python3 models/export_latent.py --arch unet    # -> models/latent-unet/
  /usr/bin/python3 models/export_latent.py --arch dit     # -> models/latent-dit/

Each folder: model_index.json, scheduler/scheduler_config.json, tokenizer/ (CLIP BPE, model_max_length 16),
text_encoder/{config.json,model.onnx}, unet/ or transformer/ {config.json,model.onnx},
vae_decoder/{config.json,model.onnx}, vae_encoder/{config.json,model.onnx}. Signatures as Optimum exports
them: UNet (sample [B,4,h,w], timestep float32 0-d, encoder_hidden_states [B,L,64]) -> out_sample; SD3
transformer (hidden_states, encoder_hidden_states, pooled_projections, timestep float32 [step]) ->
out_hidden_states; text encoder input_ids int64 [B,L] -> last_hidden_state, pooler_output; VAE encoder
sample -> latent_parameters (mean ++ logvar), VAE decoder latent_sample (unscaled) -> sample.
opset 17, dynamic batch, onnx.checker, onnxruntime-node vs PyTorch max abs diff -> <folder>/export.json.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import export_onnx  # noqa: E402
import latent_nets  # noqa: E402
from train_latent import TextToLatent  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DIFFUSERS = "0.31.0"


def dump(obj, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def vae_config(vae_cfg, sf):
    chans = vae_cfg["chans"]
    return {
        "_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS, "_name_or_path": "rediffuse/latent-fashion/vae",
        "act_fn": "silu", "block_out_channels": chans,
        "down_block_types": ["DownEncoderBlock2D"] * len(chans), "force_upcast": False, "in_channels": 1,
        "latent_channels": vae_cfg["latent"], "latents_mean": None, "latents_std": None,
        "layers_per_block": vae_cfg["layers"], "mid_block_add_attention": False, "norm_num_groups": 8,
        "out_channels": 1, "sample_size": 28, "scaling_factor": sf, "shift_factor": None,
        "up_block_types": ["UpDecoderBlock2D"] * len(chans), "use_post_quant_conv": True, "use_quant_conv": True,
    }


def text_config(tc):
    return {
        "architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
        "eos_token_id": 2, "export_model_type": "clip-text", "hidden_act": "quick_gelu", "hidden_size": tc["dim"],
        "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": tc["mlp"], "layer_norm_eps": 1e-05,
        "max_position_embeddings": tc["max_len"], "model_type": "clip_text_model", "num_attention_heads": tc["heads"],
        "num_hidden_layers": tc["layers"], "pad_token_id": 1, "projection_dim": tc["dim"], "torch_dtype": "float32",
        "transformers_version": "4.46.0", "vocab_size": tc["vocab"],
        "rediffuse_note": "embedding rows only for the training captions' ids (used_ids); every other CLIP id shares one row",
        "used_ids": tc["used_ids"],
    }


def unet_config(nc):
    c = nc["ch"]
    return {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS, "_name_or_path": "rediffuse/latent-fashion/unet",
        "act_fn": "silu", "attention_head_dim": nc["heads"], "block_out_channels": [c, 2 * c],
        "center_input_sample": False, "cross_attention_dim": nc["ctx"],
        "down_block_types": ["CrossAttnDownBlock2D" if nc["attn7"] else "DownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": nc["latent"], "layers_per_block": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-06, "norm_num_groups": 8, "out_channels": nc["latent"],
        "sample_size": 7, "time_embedding_type": "positional", "transformer_layers_per_block": 1,
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D" if nc["attn7"] else "UpBlock2D"],
        "prediction_type": "epsilon",
        "rediffuse_note": "a miniature of UNet2DConditionModel (see models/latent_nets.py CondUNet), not its exact module graph",
    }


def dit_config(nc):
    return {
        "_class_name": "SD3Transformer2DModel", "_diffusers_version": DIFFUSERS, "_name_or_path": "rediffuse/latent-fashion/transformer",
        "attention_head_dim": nc["dim"] // nc["heads"], "caption_projection_dim": nc["dim"], "dual_attention_layers": [],
        "in_channels": nc["latent"], "joint_attention_dim": nc["ctx"], "num_attention_heads": nc["heads"],
        "num_layers": nc["depth"], "out_channels": nc["latent"], "patch_size": 1, "pooled_projection_dim": nc["pooled"],
        "pos_embed_max_size": nc["size"], "qk_norm": None, "sample_size": nc["size"],
        "rediffuse_note": "a miniature of SD3Transformer2DModel (see models/latent_nets.py FlowDiT): learned 7x7 position "
                          "embedding, MLP ratio " + str(nc["mlp_ratio"]),
    }


UNET_SCHEDULER = {
    "_class_name": "DDIMScheduler", "_diffusers_version": DIFFUSERS, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "epsilon",
    "set_alpha_to_one": False, "steps_offset": 0, "timestep_spacing": "trailing", "trained_betas": None,
}
DIT_SCHEDULER = {
    "_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": DIFFUSERS, "num_train_timesteps": 1000,
    "shift": 1.0, "use_dynamic_shifting": False,
}


def model_index(arch):
    if arch == "unet":
        return {
            "_class_name": "StableDiffusionPipeline", "_diffusers_version": DIFFUSERS, "_name_or_path": "rediffuse/latent-fashion-unet",
            "feature_extractor": [None, None], "image_encoder": [None, None], "requires_safety_checker": False,
            "safety_checker": [None, None], "scheduler": ["diffusers", "DDIMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
        }
    return {
        "_class_name": "StableDiffusion3Pipeline", "_diffusers_version": DIFFUSERS, "_name_or_path": "rediffuse/latent-fashion-dit",
        "feature_extractor": [None, None], "image_encoder": [None, None],
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": [None, None], "text_encoder_3": [None, None],
        "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": [None, None], "tokenizer_3": [None, None],
        "transformer": ["diffusers", "SD3Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"],
    }


def export_part(model, args, path, ins, outs, dyn, feeds_np):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ops = export_onnx.export(model, args, path, ins, outs, dyn)
    with torch.no_grad():
        ref = model(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)
    # the exporter names some static output dims after the op that made them (e.g. LayerNormalization..._dim_2):
    # give every dim that is not one of the declared dynamic axes its concrete size
    m = onnx.load(path)
    for o, r in zip(m.graph.output, ref):
        for i, d in enumerate(o.type.tensor_type.shape.dim):
            if d.dim_param and i not in dyn.get(o.name, {}):
                d.Clear()
                d.dim_value = int(r.shape[i])
    onnx.checker.check_model(m)
    onnx.save(m, path)
    ort_outs, how = export_onnx.run_ort(path, feeds_np, outs)
    err = export_onnx.compare(os.path.relpath(path, HERE), ref, ort_outs, how)
    return dict(max_abs_diff=err, checked_with=how, nodes=sum(ops.values()), bytes=os.path.getsize(path),
                inputs=export_onnx.io_spec(path)[0], outputs=export_onnx.io_spec(path)[1])


class UNetWrap(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.net(sample, timestep, encoder_hidden_states)


def write_card(out, arch, report):
    """<out>/README.md: what the folder is, its signatures and how it was made (quality: models/README.md)."""
    tr = report["training"]
    den = "unet" if arch == "unet" else "transformer"
    what = ("SD-style text-conditioned U-Net with cross-attention, epsilon-prediction, scaled_linear betas 0.00085-0.012; "
            "scheduler DDIMScheduler with timestep_spacing trailing" if arch == "unet" else
            "SD3-style MMDiT (joint attention, adaLN-Zero on timestep + pooled text), rectified-flow velocity; "
            "scheduler FlowMatchEulerDiscreteScheduler, shift 1.0")
    lines = [f"# latent-{arch}: a Fashion-MNIST text-to-image pipeline trained by rediffuse", "",
             f"{what}. Latent 4x7x7 of a 1-channel 28x28 VAE (factor 4, scaling_factor {tr['scaling_factor']:.4f}); "
             "CLIP BPE tokenizer with model_max_length 16; a tiny CLIP-like text encoder (width 64, 2 layers) trained "
             "jointly with this denoiser. Prompts: the Fashion-MNIST class names, e.g. \"a photo of a sneaker\", "
             "\"an image of a dress\", \"ankle boot\" (models/latent-captions.json lists the 104 training captions).", "",
             "Made by models/train_vae.py, models/train_latent.py and models/export_latent.py (recipe, training cost and "
             "quality: models/README.md). ONNX opset 17, dynamic batch.", "",
             "| part | input | output | bytes | max abs diff onnxruntime-node vs PyTorch |", "| --- | --- | --- | --- | --- |"]
    for part in ("text_encoder", den, "vae_encoder", "vae_decoder"):
        r = report[part]
        fmt = lambda io: ", ".join(f"`{k}` {v['dtype']} [{', '.join(str(d) for d in v['shape'])}]" for k, v in io.items())
        lines.append(f"| `{part}/` | {fmt(r['inputs'])} | {fmt(r['outputs'])} | {r['bytes']:,} | {r['max_abs_diff']:.1e} |")
    lines += ["", f"Training: {tr['step']} steps of batch 256 in {tr['seconds']:.0f} s on one CPU thread, final loss "
              f"{tr['final_loss']:.4f}; parameters {tr['params']}. VAE: test MSE {tr['vae']['test_mse']:.4f} "
              f"(PSNR {tr['vae']['test_psnr_db']:.1f} dB).", ""]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=["unet", "dit"], required=True)
    ap.add_argument("--vae", default=os.path.join(HERE, "checkpoints", "vae", "vae.pt"))
    ap.add_argument("--ckpt", default=None, help="default models/checkpoints/latent-<arch>/ema.pt")
    ap.add_argument("--out", default=None, help="default models/latent-<arch>")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = args.out or os.path.join(HERE, f"latent-{args.arch}")
    vst = common.torch_load(args.vae)
    vae = latent_nets.VAE(**{k: (tuple(v) if k == "chans" else v) for k, v in vst["config"].items()})
    vae.load_state_dict(vst["state_dict"])
    vae.eval()
    st = common.torch_load(args.ckpt or os.path.join(HERE, "checkpoints", f"latent-{args.arch}", "ema.pt"))
    cfg = st["config"]
    model = TextToLatent(args.arch, cfg["text"], cfg["net"])
    model.load_state_dict(st["state_dict"])
    model.eval()
    sf = float(st["scaling_factor"])
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    report = {}
    g = torch.Generator().manual_seed(0)

    # tokenizer
    shutil.copytree(os.path.join(HERE, "latent-tokenizer"), os.path.join(out, "tokenizer"))
    dump(model_index(args.arch), os.path.join(out, "model_index.json"))
    dump(UNET_SCHEDULER if args.arch == "unet" else DIT_SCHEDULER, os.path.join(out, "scheduler", "scheduler_config.json"))

    # text encoder
    with open(os.path.join(HERE, "latent-captions.json")) as f:
        cap = json.load(f)
    ids = torch.tensor([cap["captions"][0]["ids"], cap["captions"][-1]["ids"], cap["empty"]], dtype=torch.long)
    dump(text_config(cfg["text"]), os.path.join(out, "text_encoder", "config.json"))
    report["text_encoder"] = export_part(model.text, (ids,), os.path.join(out, "text_encoder", "model.onnx"), ["input_ids"],
                                         ["last_hidden_state", "pooler_output"],
                                         {"input_ids": {0: "batch_size", 1: "sequence_length"},
                                          "last_hidden_state": {0: "batch_size", 1: "sequence_length"},
                                          "pooler_output": {0: "batch_size"}}, {"input_ids": ids.numpy()})
    with torch.no_grad():
        hs, pooled = model.text(ids)

    # denoiser
    B = 3
    x = torch.randn(B, 4, 7, 7, generator=g)
    if args.arch == "unet":
        dump(unet_config(cfg["net"]), os.path.join(out, "unet", "config.json"))
        t = torch.tensor(517.0)
        report["unet"] = export_part(UNetWrap(model.net), (x, t, hs), os.path.join(out, "unet", "model.onnx"),
                                     ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
                                     {"sample": {0: "batch_size", 2: "height", 3: "width"},
                                      "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
                                      "out_sample": {0: "batch_size", 2: "height", 3: "width"}},
                                     {"sample": x.numpy(), "timestep": t.numpy(), "encoder_hidden_states": hs.numpy()})
    else:
        dump(dit_config(cfg["net"]), os.path.join(out, "transformer", "config.json"))
        t = torch.tensor([870.0, 120.5, 999.0])
        report["transformer"] = export_part(model.net, (x, hs, pooled, t), os.path.join(out, "transformer", "model.onnx"),
                                            ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep"],
                                            ["out_hidden_states"],
                                            {"hidden_states": {0: "batch_size"},
                                             "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
                                             "pooled_projections": {0: "batch_size"}, "timestep": {0: "step"},
                                             "out_hidden_states": {0: "batch_size"}},
                                            {"hidden_states": x.numpy(), "encoder_hidden_states": hs.numpy(),
                                             "pooled_projections": pooled.numpy(), "timestep": t.numpy()})

    # VAE
    vcfg = vae_config(vst["config"], sf)
    for part in ("vae_encoder", "vae_decoder"):
        dump(vcfg, os.path.join(out, part, "config.json"))
    img = torch.rand(2, 1, 28, 28, generator=g) * 2 - 1
    report["vae_encoder"] = export_part(vae.encoder, (img,), os.path.join(out, "vae_encoder", "model.onnx"), ["sample"],
                                        ["latent_parameters"],
                                        {"sample": {0: "batch_size", 2: "height", 3: "width"},
                                         "latent_parameters": {0: "batch_size", 2: "height_latent", 3: "width_latent"}},
                                        {"sample": img.numpy()})
    z = torch.randn(2, 4, 7, 7, generator=g) / sf
    report["vae_decoder"] = export_part(vae.decoder, (z,), os.path.join(out, "vae_decoder", "model.onnx"), ["latent_sample"],
                                        ["sample"],
                                        {"latent_sample": {0: "batch_size", 2: "height_latent", 3: "width_latent"},
                                         "sample": {0: "batch_size", 2: "height", 3: "width"}},
                                        {"latent_sample": z.numpy()})
    report["training"] = dict(step=st["step"], seconds=st["seconds"], final_loss=st["loss"], params=st["params"],
                              vae=vst["metrics"], scaling_factor=sf, torch=str(torch.__version__), opset=17)
    report["total_bytes"] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    dump(report, os.path.join(out, "export.json"))
    write_card(out, args.arch, report)
    print(json.dumps({k: (v.get("max_abs_diff") if isinstance(v, dict) else v) for k, v in report.items()}, indent=1))


if __name__ == "__main__":
    main()
