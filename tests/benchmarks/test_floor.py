from benchmarks.floor import (
    EncoderShape,
    flops_breakdown,
    flops_per_sample,
    matmul_params_per_layer,
    shape_from_config,
)

TINY = EncoderShape(layers=2, hidden=4, intermediate=8, heads=2, labels=3, head="cls-dense")


def test_tiny_encoder_by_hand() -> None:
    # Per layer and token: Q, K, V, output 4 x (4 x 4) = 64 MACs; FFN 4 x 8 + 8 x 4 = 64 MACs.
    assert matmul_params_per_layer(TINY) == 128
    seq = 3
    weights = 2 * 128 * seq * 2  # 2 FLOPs per MAC, 3 tokens, 2 layers
    # Per layer: QK^T is 3 x 3 scores of 4-long dot products (all heads), the same for AV.
    attention = 2 * (3 * 3 * 4 + 3 * 3 * 4) * 2
    head = 2 * (4 * 4 + 4 * 3)  # dense on the first token, then 3 labels
    assert flops_breakdown(TINY, seq) == {"weights": weights, "attention": attention, "head": head}
    assert flops_per_sample(TINY, seq) == 1536 + 288 + 56


def test_heads_and_no_head() -> None:
    linear = EncoderShape(layers=1, hidden=4, intermediate=8, heads=2, labels=3, head="linear")
    bare = EncoderShape(layers=1, hidden=4, intermediate=8, heads=2)
    assert flops_breakdown(linear, 1)["head"] == 24
    assert flops_breakdown(bare, 1)["head"] == 0


def test_roberta_base_at_64_tokens() -> None:
    config = {
        "num_hidden_layers": 12,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
    }
    shape = shape_from_config(config, "sequence-classification", labels=3)
    assert shape.head == "cls-dense"
    # About 85M matrix-product weights: 2 x 85M x 64 tokens, plus about 1.4% attention.
    assert matmul_params_per_layer(shape) * 12 == 84_934_656
    assert round(flops_per_sample(shape, 64) / 1e9, 2) == 11.02


def test_attention_grows_quadratically() -> None:
    short, long = flops_breakdown(TINY, 10), flops_breakdown(TINY, 20)
    assert long["attention"] == 4 * short["attention"]
    assert long["weights"] == 2 * short["weights"]
