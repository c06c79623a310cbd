"""Export the trained DemoNet to ONNX and check the graph.

    /usr/bin/python3 export.py --ckpt /tmp/pgn-demo/demo.pt --out ../model.onnx

One input "input" float32 [N,3,256,512] (N dynamic), one output "logits"
[N,7,256,512]; opset 17, legacy TorchScript exporter, eval mode.
"""
import argparse
import inspect

import numpy as np
import onnx
import onnx.numpy_helper
import torch

import net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="/tmp/pgn-demo/demo.pt")
    ap.add_argument("--out", default="../model.onnx")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)

    model = net.DemoNet()
    model.load_state_dict(torch.load(args.ckpt, map_location="cpu")["model"])
    model.eval()
    x = torch.randn(1, 3, 256, 512)
    with torch.no_grad():
        ref = model(x)
        model.export_fixed_scale = True
        assert torch.allclose(ref, model(x), atol=1e-5)
    kw = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False  # legacy TorchScript exporter
    with torch.no_grad():
        torch.onnx.export(model, x, args.out, opset_version=17, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          do_constant_folding=True, **kw)

    m = onnx.load(args.out)
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    assert [i.name for i in g.input] == ["input"], [i.name for i in g.input]
    assert [o.name for o in g.output] == ["logits"], [o.name for o in g.output]
    prod = {o: n for n in g.node for o in n.output}
    resize = prod["logits"]
    assert resize.op_type == "Resize", resize.op_type
    conv = prod[resize.input[0]]
    assert conv.op_type == "Conv", conv.op_type
    inits = {t.name: t for t in g.initializer}
    w = onnx.numpy_helper.to_array(inits[conv.input[1]])
    assert w.shape[2:] == (1, 1) and w.shape[0] == 7 and len(conv.input) == 3, w.shape
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in resize.attribute}
    print("inputs :", [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in g.input])
    print("outputs:", [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]) for o in g.output])
    print(f"final conv : name={conv.name} op={conv.op_type} in={conv.input[0]} weight={conv.input[1]} {w.shape} bias={conv.input[2]}")
    print(f"resize     : name={resize.name} op={resize.op_type} inputs={list(resize.input)} attrs={attrs}")
    print(f"output     : {g.output[0].name}")
    print("last nodes :", [(n.name, n.op_type) for n in g.node[-6:]])
    # the exported classifier weights are the torch ones
    assert np.allclose(w, model.classifier.weight.detach().numpy())


if __name__ == "__main__":
    main()
