"""Attention exported as ONNX Runtime's MultiHeadAttention contrib op: one node per block, same numbers."""

import numpy as np
import pytest
import torch

from socialmae_rt.engines.fused_attention import with_fused_attention
from socialmae_rt.engines.onnx_export import _ModeGraph, example_inputs
from socialmae_rt.model import Modality, SocialMAE, SocialMAEConfig

TINY = SocialMAEConfig(embed_dim=32, num_heads=2, modality_specific_depth=1, extra_heads={"laughter": 1})


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(4)
    return SocialMAE(TINY).eval()


def export(module, path, inputs):
    with torch.no_grad():
        torch.onnx.export(module, inputs, str(path), dynamo=False, opset_version=17, input_names=["audio", "video"],
                          output_names=["embedding", "emotion", "laughter"], custom_opsets={"com.microsoft": 1},
                          dynamic_axes={"audio": {0: "batch"}, "video": {0: "batch"}})


def test_fused_view_computes_what_the_model_computes(model):
    feeds = {k: torch.from_numpy(v) for k, v in example_inputs(TINY, batch=2, seed=1).items()}
    with torch.no_grad():
        ours = model.predict(feeds["audio"], feeds["video"])
        fused = with_fused_attention(model).predict(feeds["audio"], feeds["video"])
    torch.testing.assert_close(fused.embedding, ours.embedding, rtol=1e-5, atol=1e-5)


def test_exported_graph_has_one_fused_node_per_block_and_onnx_runtime_matches_torch(model, tmp_path):
    import onnx
    import onnxruntime as ort

    inputs = example_inputs(TINY, batch=2, seed=2)
    path = tmp_path / "av.onnx"
    export(_ModeGraph(with_fused_attention(model), Modality.AUDIOVISUAL),
           path, (torch.from_numpy(inputs["audio"]), torch.from_numpy(inputs["video"])))
    graph = onnx.load(str(path)).graph
    fused = [node for node in graph.node if node.op_type == "MultiHeadAttention"]
    assert len(fused) == 2 * TINY.modality_specific_depth + TINY.joint_depth
    assert all(node.domain == "com.microsoft" for node in fused)
    assert not [node for node in graph.node if node.op_type == "Softmax"]  # no attention left unfused
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(zip(["embedding", "emotion", "laughter"], session.run(None, inputs)))
    with torch.no_grad():
        expected = model.predict(torch.from_numpy(inputs["audio"]), torch.from_numpy(inputs["video"]))
    np.testing.assert_allclose(got["embedding"], expected.embedding.numpy(), atol=1e-4)
    np.testing.assert_allclose(got["emotion"], expected.logits["emotion"].numpy(), atol=1e-4)
