"""The fine-tuned two-tower ranker: a pretrained text encoder for items, a small transformer for users.

Item vector  v_i = W t_i + warm_i * e_i
    t_i: mean-pooled all-MiniLM-L6-v2 vector of the item's text (title, category, brand, colour,
         the start of the description); the encoder's top layers are fine-tuned (mode ``top``),
         all of it (``full``), none (``frozen``), or LoRA adapters on the top layers' attention
         (``lora``: the pretrained weights stay frozen, only low-rank updates of the query and value
         projections train; peft).
    e_i: a learned item-id embedding, zero for items with no training interaction (warm_i = 0), so a
         new item is scored from its text alone.
User vector  u = BertModel(v_{h_1} .. v_{h_L})[last]   (causal, most recent item last, L <= 50)
             or, with ``user_residual``, u = mean(v_{h_1} .. v_{h_L}) + O BertModel(...)[last] with O
             zero at the start, so training starts from the zero-shot ranking and learns a correction
Score        s(u, i) = u . v_i   (divided by ``temperature`` in the training softmax)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import BertConfig, BertModel

from engine.core.files import cache_key, cached_array
from engine.models.store import Pretrained
from engine.models.text_encoder import mean_pool

ENCODER_MODES = ("top", "full", "frozen", "lora")
TEXT_LAYERS_KEEP = 2  # cached lower-layer states kept per data directory (items x tokens x 384 float16 each)
TOKENS_PER_ROW = 16  # padded history positions per row of a scoring batch, on average (see run_user_tower)
# LoRA in ``lora`` mode (Hu et al. 2021): W x + (alpha / r) B A x on these projections of the top layers.
LORA_RANK, LORA_ALPHA, LORA_TARGETS = 8, 16, ("query", "value")


@dataclass(frozen=True)
class RankerConfig:
    """Every hyperparameter of the ranker; saved as config.json beside the weights.

    Frozen: a changed config is a new one (``dataclasses.replace``), validated again.
    """

    encoder_path: str | None = None  # BERT-family model folder; None = the packaged all-MiniLM-L6-v2
    mode: str = "top"  # encoder fine-tuning: "top" (last layers), "full", "frozen" or "lora" (adapters on the last layers)
    top_layers: int = 1  # layers fine-tuned in "top" mode, or given LoRA adapters in "lora" mode
    use_text: bool = True  # False for data without real item text (Beauty): id embeddings only
    use_id: bool = True  # learned item-id embeddings beside the text vector
    id_dropout: float = 0.0  # share of items whose id embedding is dropped per training step, so text alone must rank (cold start; DropoutNet, Volkovs et al. 2017)
    id_init: str = "svd"  # id-only models: start id embeddings from an SVD of the user x item matrix ("random" = N(0, 0.1))
    user_residual: bool = False  # user vector = mean of history item vectors + a zero-initialised transformer correction
    text_init: str = "random"  # text projection W: "random" or "pca" (the text table's top principal directions, so W t_i . W t_j ~ t_i . t_j)
    text_max_len: int = 32  # tokens of item text
    dim: int = 128  # item and user vector size
    user_layers: int = 2  # transformer layers of the user tower
    user_heads: int = 2  # attention heads of the user tower
    max_len: int = 50  # most recent history items the user tower reads
    dropout: float = 0.2  # dropout in the user tower and on item vectors
    n_negatives: int = 512  # uniformly sampled negatives shared by a batch (plus in-batch targets); 0 = full softmax over every item
    temperature: float = 1.0  # softmax temperature on inner products
    batch_size: int = 128  # user sequences per step
    lr: float = 3e-4  # AdamW learning rate of the towers (1e-3 peaked after one epoch on the demo store)
    encoder_lr: float = 1e-5  # AdamW learning rate of fine-tuned encoder layers (5e-5 drifted the table)
    lora_lr: float = 2e-4  # AdamW learning rate of the LoRA adapters ("lora" mode; B starts at zero, so 1e-5 would barely move it)
    weight_decay: float = 0.01  # AdamW weight decay
    encoder_items_per_step: int = 48  # items re-encoded with gradient per step (top/full/lora modes)
    max_epochs: int = 60  # upper bound on epochs (passes over the training users)
    min_steps_per_epoch: int = 40  # small data sets repeat passes until an epoch has this many steps
    patience: int = 2  # epochs without validation progress (see min_gain) before stopping
    min_gain: float = 0.01  # progress: validation NDCG@10 above the best so far by this share (a smaller gain still updates the best)
    refit: bool = False  # then train again on train + validation for the best epoch count (the temporal protocol's newest days)
    collapse_repeats: bool = True  # a run of events on one item (view, cart, purchase) reads as one item
    train_on_repeats: bool = False  # also learn to predict items the user already had (False suits masked evaluation)
    event_head: bool = False  # multi-task: also predict the next event type (purchase vs view ...)
    n_events: int = 0  # number of event types (set from the data when event_head is on)
    seed: int = 42  # seeds torch and numpy

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            kind = type(f.default)
            if f.default is None:
                ok = value is None or isinstance(value, str)
            elif kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            elif kind is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
            else:
                ok = isinstance(value, kind)
            if not ok:
                expected = {bool: "true or false", int: "a whole number of at least 0", float: "a finite number of at least 0"}.get(kind, "text")
                raise ValueError(f"{f.name} must be {expected}, got {value!r}")
        if self.mode not in ENCODER_MODES:
            raise ValueError(f"mode must be one of {ENCODER_MODES}, got {self.mode!r}")
        if self.mode == "lora" and self.top_layers < 1:
            raise ValueError(f"top_layers must be at least 1 in lora mode (the layers given adapters), got {self.top_layers}")
        if self.text_init not in ("random", "pca"):
            raise ValueError(f"text_init must be 'random' or 'pca', got {self.text_init!r}")
        if self.id_init not in ("svd", "random"):
            raise ValueError(f"id_init must be 'svd' or 'random', got {self.id_init!r}")
        for name in ("dim", "user_layers", "user_heads", "max_len", "batch_size", "text_max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.dim % self.user_heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of user_heads ({self.user_heads})")
        if not 0 <= self.dropout < 1 or not 0 <= self.id_dropout <= 1:
            raise ValueError(f"dropout must be in [0, 1) and id_dropout in [0, 1], got {self.dropout}, {self.id_dropout}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be above 0, got {self.temperature}")

    @classmethod
    def from_dict(cls, values: dict) -> "RankerConfig":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        # Models saved before a field existed behaved as if it were off.
        values.setdefault("collapse_repeats", False)
        return cls(**values)


def add_lora(encoder: nn.Module, layers: list[int]) -> None:
    """Inject LoRA adapters (peft) into the query and value projections of the given encoder layers.

    In place (``peft.inject_adapter_in_model``): the encoder stays the same BertModel, so
    ``encoder.encoder.layer[i]`` still names layer i (``get_peft_model`` would wrap it and move
    the layers under ``base_model.model``); each adapted ``nn.Linear`` becomes a peft ``lora.Linear``
    whose ``lora_B`` starts at zero, so the encoder's output is unchanged until training moves it.
    Afterwards only the adapters require gradients.

    Args:
        encoder: a BERT-family ``transformers`` model (``encoder.encoder.layer``).
        layers: indices of the layers that get adapters.

    Raises:
        ModelError: peft is not installed.
    """
    try:
        import peft
    except ImportError as exc:  # pragma: no cover - peft is a dependency of lora mode only
        from engine.core.errors import ModelError

        raise ModelError("--mode lora needs the peft library: pip install peft") from exc
    config = peft.LoraConfig(r=LORA_RANK, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=list(LORA_TARGETS),
                             layers_to_transform=list(layers))
    peft.inject_adapter_in_model(config, encoder)
    for name, p in encoder.named_parameters():
        p.requires_grad = "lora_" in name


class TextTower(nn.Module):
    """The pretrained encoder as item tower: cached lower layers, fine-tuned top layers.

    In ``top`` mode the hidden states below the fine-tuned layers are computed once (no gradient)
    and cached, so re-encoding an item costs only the top layers. ``lora`` mode caches the same
    lower layers and trains only LoRA adapters (:func:`add_lora`) of the top ``top_layers`` layers.
    """

    def __init__(self, encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, mode: str, top_layers: int):
        super().__init__()
        self.encoder, self.mode = encoder, mode
        self.register_buffer("input_ids", input_ids, persistent=False)  # (I, T)
        self.register_buffer("attention_mask", attention_mask, persistent=False)  # (I, T)
        n_layers = len(encoder.encoder.layer)
        # Frozen caches below the same layer as top and lora (its table runs the rest once, without
        # gradient), so one cache of the lower layers serves every mode `--mode auto` tries.
        self.split = 0 if mode == "full" else max(n_layers - top_layers, 0)
        for p in encoder.parameters():
            p.requires_grad = mode == "full"
        if mode == "top":
            for layer in encoder.encoder.layer[self.split :]:
                for p in layer.parameters():
                    p.requires_grad = True
        if mode == "lora":
            if not 1 <= top_layers <= n_layers:
                raise ValueError(f"lora mode adapts 1 to {n_layers} top layers of this encoder, got top_layers={top_layers}")
            add_lora(encoder, list(range(self.split, n_layers)))
        self.cache: torch.Tensor | None = None  # (I, T, H) float16 hidden states at layer `split`
        self.offset: torch.Tensor | None = None  # (I, H) added to every output (see anchor)

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.encoder.parameters() if p.requires_grad]

    @torch.no_grad()
    def anchor(self, table: torch.Tensor) -> None:
        """Shift the tower's output so that, with the current weights, it gives ``table`` exactly.

        A saved model keeps its tuned text vectors but not its encoder; to train the encoder further
        from that model (``homepage update``), the tower's output becomes ``table_i + (t_i - t0_i)``
        with ``t0`` the vectors of the weights now: training moves the vectors from the saved ones.

        Args:
            table: (I, H) text vectors the tower should start from (a model's ``text_table``).
        """
        self.offset = None
        self.offset = table.float() - self.encode_all()

    @torch.no_grad()
    def build_cache(self, batch: int = 256, folder: Path | None = None, encoder_name: str = "") -> None:
        """Hidden states below the fine-tuned layers, once (``top``/``lora``/``frozen`` modes).

        Args:
            batch: items encoded at once.
            folder: a data directory's ``.cache``, where the states are kept for the next model
                trained on the same texts with the same encoder (None: computed, not kept).
            encoder_name: what identifies the encoder's weights (its folder), part of the key.
        """
        if self.mode == "full":
            return

        def compute() -> np.ndarray:
            parts = []
            for s in range(0, len(self.input_ids), batch):
                parts.append(self._run(self.input_ids[s : s + batch], self.attention_mask[s : s + batch], 0, self.split).half())
            return torch.cat(parts).numpy()

        key = cache_key(f"{encoder_name}\x00{self.split}", self.input_ids.numpy(), self.attention_mask.numpy())
        shape = (*self.input_ids.shape, self.encoder.config.hidden_size)
        states = cached_array(folder, "text_layers", key, compute,
                              lambda v: v.shape == shape and v.dtype == np.float16, keep=TEXT_LAYERS_KEEP)
        self.cache = torch.from_numpy(states)

    def _run(self, ids: torch.Tensor | None, mask: torch.Tensor, start: int, stop: int, hidden: torch.Tensor | None = None) -> torch.Tensor:
        """Run encoder layers [start, stop) and return hidden states (B, T, H)."""
        if start == 0:
            hidden = self.encoder.embeddings(input_ids=ids)
        ext = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min  # (B, 1, 1, T)
        for layer in self.encoder.encoder.layer[start:stop]:
            hidden = layer(hidden, attention_mask=ext)
            if isinstance(hidden, tuple):
                hidden = hidden[0]
        return hidden

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """L2-normalised mean-pooled text vectors of the given items: (N,) -> (N, H).

        Normalising (as the sentence encoder was trained) keeps fine-tuning from inflating norms.
        After :meth:`anchor` the anchored offsets are added.
        """
        mask = self.attention_mask[items]
        n_layers = len(self.encoder.encoder.layer)
        if self.mode == "full" or self.cache is None:
            hidden = self._run(self.input_ids[items], mask, 0, n_layers)
        else:
            hidden = self._run(None, mask, self.split, n_layers, hidden=self.cache[items].float())
        out = nn.functional.normalize(mean_pool(hidden, mask), dim=-1)
        return out if self.offset is None else out + self.offset[items]

    @torch.no_grad()
    def encode_all(self, batch: int = 256) -> torch.Tensor:
        """Text vectors of the whole catalogue with the current weights: (I, H)."""
        was = self.training
        self.eval()
        out = torch.cat([self(torch.arange(s, min(s + batch, len(self.input_ids)))) for s in range(0, len(self.input_ids), batch)])
        self.train(was)
        return out


class Ranker(Pretrained, nn.Module):
    """Two towers over one item table; see the module docstring for the forward pass.

    ``Ranker.from_pretrained(dir, data)`` and ``model.save_pretrained(dir, data, manifest)`` read and
    write the model directory (:mod:`engine.models.store`).
    """

    config_class = RankerConfig

    def __init__(self, config: RankerConfig, n_items: int, text_dim: int = 384):
        super().__init__()
        self.config = config
        c = config
        self.n_items = n_items
        self.text_proj = nn.Linear(text_dim, c.dim) if c.use_text else None
        self.item_emb = nn.Embedding(n_items, c.dim) if c.use_id else None
        if self.item_emb is not None:
            # From a PCA projection the ids start at zero, so the untrained model is the zero-shot one.
            nn.init.normal_(self.item_emb.weight, std=0.0 if c.use_text and c.text_init == "pca" else 0.02 if c.use_text else 0.1)
        self.register_buffer("warm", torch.ones(n_items, 1))  # (I, 1): 0 = no id embedding (new item)
        self.register_buffer("text_table", torch.zeros(n_items, text_dim if c.use_text else 1))  # (I, H) text vectors
        bert = BertConfig(
            vocab_size=1, hidden_size=c.dim, num_hidden_layers=c.user_layers, num_attention_heads=c.user_heads,
            intermediate_size=4 * c.dim, max_position_embeddings=c.max_len, hidden_dropout_prob=c.dropout,
            attention_probs_dropout_prob=c.dropout, is_decoder=True, use_cache=False,
        )
        self.user_tower = BertModel(bert, add_pooling_layer=False)
        self.user_out = None
        if c.user_residual:  # zero at the start: the user vector begins as the history's mean item vector
            self.user_out = nn.Linear(c.dim, c.dim)
            nn.init.zeros_(self.user_out.weight)
            nn.init.zeros_(self.user_out.bias)
        self.item_dropout = nn.Dropout(c.dropout)
        self.event_head = nn.Linear(c.dim, c.n_events) if c.event_head and c.n_events > 1 else None

    # -- item side ---------------------------------------------------------------------------
    def item_vectors(self, items: torch.Tensor | None = None, fresh_text: torch.Tensor | None = None, id_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Item vectors v_i for the given items (all when None): (N,) -> (N, D).

        ``fresh_text`` (N, H) replaces the table's text vectors (gradient into the encoder);
        ``id_keep`` (N, 1) multiplies the id embeddings (0 = score the item as if it were new).
        """
        idx = torch.arange(self.n_items) if items is None else items
        out = 0
        if self.text_proj is not None:
            text = self.text_table[idx] if fresh_text is None else fresh_text
            out = self.text_proj(text)  # (N, D)
        if self.item_emb is not None:
            keep = self.warm[idx] if id_keep is None else self.warm[idx] * id_keep
            out = out + self.item_emb(idx) * keep  # (N, D)
        return out

    # -- user side ---------------------------------------------------------------------------
    def user_states(self, seq_vectors: torch.Tensor) -> torch.Tensor:
        """Causal transformer over history item vectors: (B, L, D) -> (B, L, D).

        Sequences are right-padded: with a causal mask real positions never see the padding. With
        ``user_residual`` each state is the running mean of the items so far plus the correction.
        """
        states = self.user_tower(inputs_embeds=self.item_dropout(seq_vectors)).last_hidden_state
        if self.user_out is None:
            return states
        seen = torch.arange(1, seq_vectors.shape[1] + 1, dtype=seq_vectors.dtype)[None, :, None]  # (1, L, 1)
        return seq_vectors.cumsum(1) / seen + self.user_out(states)

    def user_vectors(self, seqs: torch.Tensor, lengths: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """User vectors from padded item-index sequences (B, L) and the item table (I, D): (B, D)."""
        states = self.user_states(table[seqs])  # (B, L, D)
        return states[torch.arange(len(seqs)), lengths - 1]  # (B, D)


def collapse_repeats(seq: np.ndarray) -> np.ndarray:
    """Drop consecutive repeats of one item: [a, a, b, a] -> [a, b, a]."""
    if len(seq) < 2:
        return seq
    return seq[np.r_[True, seq[1:] != seq[:-1]]]


def pad_sequences(histories: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Most recent ``max_len`` items of each history, right-padded with 0: ((B, L), lengths (B,))."""
    lengths = np.array([min(len(h), max_len) for h in histories], dtype=np.int64)
    width = max(1, int(lengths.max()) if len(lengths) else 1)
    out = np.zeros((len(histories), width), dtype=np.int64)
    for row, (h, n) in enumerate(zip(histories, lengths)):
        if n:
            out[row, :n] = h[-n:]
    return out, np.maximum(lengths, 1)


def _length_batches(order: np.ndarray, sorted_lengths: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    """Consecutive slices of ``order`` (rows by ascending length), each of at most ``batch`` rows
    and, where its longest history allows, at most ``batch`` x :data:`TOKENS_PER_ROW` positions."""
    budget, start = batch * TOKENS_PER_ROW, 0
    while start < len(order):
        stop = min(start + batch, len(order))
        # Padded positions of the first 1, 2, ... rows (rows ascend in length): the most that fit.
        padded = np.arange(1, stop - start + 1) * np.maximum(sorted_lengths[start:stop], 1)
        stop = start + max(1, int(np.searchsorted(padded, budget, side="right")))
        yield order[start:stop]
        start = stop


@torch.no_grad()
def run_user_tower(
    model: Ranker, histories: list[np.ndarray], table: torch.Tensor, batch: int = 512, with_mean: bool = False
) -> Iterator[tuple[np.ndarray, torch.Tensor, np.ndarray | None]]:
    """The one way histories go through the user tower, batch by batch (in eval mode, no gradient).

    Histories run in order of length, so a batch pads to its own longest history: on the H&M week
    (median 3 items, window 50) batches in the given order were mostly padding.

    Args:
        model: the ranker.
        histories: item index arrays, oldest first; the last ``max_len`` items are read (runs of one
            item collapsed as the model was trained, ``collapse_repeats``).
        table: (I, D) item vectors the history items are looked up in.
        batch: histories per batch.
        with_mean: also return each user's mean state over the history positions.

    Yields:
        (the batch's rows into ``histories``, (B, D) user vectors = the last state, (B, D) mean
        states or None).
    """
    model.eval()
    if model.config.collapse_repeats:
        histories = [collapse_repeats(h) for h in histories]
    read = np.minimum([len(h) for h in histories], model.config.max_len).astype(np.int64)  # positions read
    order = np.argsort(read, kind="stable")
    for rows in _length_batches(order, read[order], batch):
        seqs, lengths = pad_sequences([histories[r] for r in rows], model.config.max_len)
        if not with_mean:
            yield rows, model.user_vectors(torch.from_numpy(seqs), torch.from_numpy(lengths), table), None  # (B, D)
            continue
        states = model.user_states(table[torch.from_numpy(seqs)]).numpy()  # (B, L, D)
        valid = (np.arange(seqs.shape[1])[None, :] < lengths[:, None]).astype(np.float32)  # (B, L)
        mean = np.einsum("bld,bl->bd", states, valid) / lengths[:, None]
        yield rows, torch.from_numpy(states[np.arange(len(seqs)), lengths - 1]), mean


@torch.no_grad()
def score_users(model: Ranker, histories: list[np.ndarray], table: torch.Tensor, batch: int = 512) -> np.ndarray:
    """Inner products of user vectors with every item: (U, I) float32. Empty histories score 0."""
    vectors = torch.zeros((len(histories), table.shape[1]), dtype=table.dtype)
    for rows, users, _ in run_user_tower(model, histories, table, batch):
        vectors[torch.from_numpy(rows)] = users
    vectors[torch.tensor([len(h) == 0 for h in histories], dtype=torch.bool)] = 0.0
    return (vectors @ table.T).numpy()  # one product: the (U, I) result is written once
