"""Frozen CLIP loaded through open_clip, with the two forward passes SECA needs.

- the image tower run block by block, so an :class:`AdapterSet` can sit beside each MLP and the
  final CLS token is available before ``ln_post``/``proj`` (SG-AKT's V_x);
- the text tower fed a learnable CoOp context in place of the placeholder tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import ConfigError, ModelConfig
from engine.model.adapters import AdapterSet
from engine.model.weights import ModelLoadError, Weights, activation_kwargs, locate, open_clip_module

open_clip_module()  # registers the package's own model configs for every importer of this module

PLACEHOLDER = "X"


def load_clip(cfg: ModelConfig, device: torch.device) -> "Clip":
    """Create the open_clip model with its eval preprocessing, frozen, on ``device``, with the
    activation its weights need (:func:`engine.model.weights.locate`)."""
    w = locate(cfg)
    oc = open_clip_module()
    try:
        model, _, preprocess = oc.create_model_and_transforms(
            cfg.name, pretrained=w.pretrained, device=device, **activation_kwargs(w), **(w.preprocess or {}))
    except Exception as e:  # open_clip/torch raise many types for a bad file or a failed download
        if w.is_file:
            raise ModelLoadError(f"Checkpoint '{w.pretrained}' cannot be loaded into {cfg.name}: {str(e).splitlines()[0]}") from None
        raise ModelLoadError(
            f"Weights '{cfg.pretrained}' for {cfg.name} could not be downloaded ({str(e).splitlines()[0]}); "
            f"download the checkpoint on a machine with internet or pass the file with "
            f"--set model.pretrained=/path/to/checkpoint.pt."
        ) from None
    model.eval().requires_grad_(False)
    return Clip(model, preprocess, oc.get_tokenizer(cfg.name), device, w)


@dataclass
class Clip:
    model: nn.Module
    preprocess: object  # CLIP's own eval transform: resize, centre crop, normalise
    tokenizer: object
    device: torch.device
    weights: Weights

    @property
    def activation(self) -> str:
        return "QuickGELU" if self.weights.quick_gelu else "GELU"

    @property
    def visual(self) -> nn.Module:
        return self.model.visual

    @property
    def vision_layers(self) -> int:
        return len(self.visual.transformer.resblocks)

    @property
    def vision_width(self) -> int:
        return self.visual.class_embedding.shape[-1]

    @property
    def text_width(self) -> int:
        return self.model.token_embedding.weight.shape[-1]

    @property
    def embed_dim(self) -> int:
        return self.model.text_projection.shape[-1]

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp())

    # ------------------------------------------------------------------------------- image tower

    def image_tokens(self, images: torch.Tensor, adapters: AdapterSet | None = None) -> torch.Tensor:
        """The final-layer CLS token before ``ln_post``/``proj`` (width-d), adapters beside each MLP."""
        v = self.visual
        x = v._embeds(images)
        for i, block in enumerate(v.transformer.resblocks):
            x = x + block.ls_1(block.attention(q_x=block.ln_1(x)))
            update = block.ls_2(block.mlp(block.ln_2(x)))
            if adapters is not None:
                update = update + adapters.blocks[i](x)  # reads the stream after attention, like the MLP
            x = x + update
        return x[:, 0]

    def project_tokens(self, cls: torch.Tensor) -> torch.Tensor:
        """proj(ln_post(cls)) with CLIP's frozen ln_post and proj; unnormalised."""
        return self.visual.ln_post(cls) @ self.visual.proj

    def encode_image(self, images: torch.Tensor, adapters: AdapterSet | None = None) -> torch.Tensor:
        """f(x) before normalisation: proj(ln_post(CLS)) with ``adapters`` on (None: frozen CLIP)."""
        return self.project_tokens(self.image_tokens(images, adapters))

    # ------------------------------------------------------------------------------- text tower

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(texts).to(self.device)

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Normalised text features of plain strings (frozen CLIP, e.g. zero-shot templates)."""
        return F.normalize(self.model.encode_text(self.tokenize(texts)), dim=-1)

    def prompt_tokens(self, class_names: list[str], length: int) -> torch.Tensor:
        """Tokens of ``"X X … X {name}"``, no trailing period as in the authors' code (seca-method.md §2);
        the ``length`` placeholders follow the start token."""
        return self.tokenize([" ".join([PLACEHOLDER] * length) + f" {name}" for name in class_names])

    def encode_prompted(self, prompt: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Normalised t_k = text_encoder(P, name_k): ``prompt`` (L × text width) replaces the placeholders."""
        m = self.model
        eot = tokens.argmax(dim=-1)
        # attention is causal: the end-of-text feature never sees the padding after it, so the
        # sequence can stop at the longest name (≈16 of CLIP's 77 positions; same result, ~5× less work)
        length = int(eot.max()) + 1
        tokens = tokens[:, :length]
        x = m.token_embedding(tokens)
        n = prompt.shape[0]
        x = torch.cat([x[:, :1], prompt.to(x.dtype).unsqueeze(0).expand(len(x), -1, -1), x[:, 1 + n :]], dim=1)
        x = x + m.positional_embedding[:length].to(x.dtype)
        x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
        x = m.ln_final(x)
        x = x[torch.arange(len(x), device=x.device), eot]
        return F.normalize(x @ m.text_projection, dim=-1)

    def context_embedding(self, phrase: str, length: int) -> torch.Tensor:
        """The token embeddings of ``phrase``, left-padded with placeholders to ``length``: a prompt
        that starts as ``"X X X a good photo of a {name}"`` reads like CLIP's own templates."""
        tokens = self.tokenize([phrase])[0]
        words = tokens[1 : int(tokens.argmax())]
        if len(words) > length:
            raise ConfigError(f"Config key 'model.prompt_init' has {len(words)} tokens, but model.prompt_length is {length}.")
        pad = self.tokenize([" ".join([PLACEHOLDER] * (length - len(words)))])[0, 1 : 1 + length - len(words)]
        return self.model.token_embedding(torch.cat([pad, words])).detach().clone()

    def placeholder_embedding(self, length: int) -> torch.Tensor:
        """The token embeddings of the placeholders; a prompt equal to them reproduces CLIP's text."""
        tok = self.tokenize([" ".join([PLACEHOLDER] * length)])[0, 1 : 1 + length]
        return self.model.token_embedding(tok).detach().clone()
