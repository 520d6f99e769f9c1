"""Triton Python-backend model: one of our ONNX graphs run by onnxruntime inside the server.

Copied as `<model>/1/model.py` by `export-triton --platform python`; Triton loads it with
`triton_python_backend_utils` on the path (only there: this file is not imported by socialmae_rt).
Dynamic batching hands `execute` several requests at once: their windows are stacked into one
onnxruntime run and the rows are handed back to each request.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        import onnxruntime

        config = json.loads(args["model_config"])
        self.inputs = [item["name"] for item in config["input"]]
        self.outputs = [item["name"] for item in config["output"]]
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        options = onnxruntime.SessionOptions()
        threads = int(parameters.get("onnxruntime_threads", "0") or 0)
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        graph = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.executions = 0

    def execute(self, requests):
        feeds, rows = {name: [] for name in self.inputs}, []
        for request in requests:
            arrays = [pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs]
            for name, array in zip(self.inputs, arrays):
                feeds[name].append(array)
            rows.append(arrays[0].shape[0])
        stacked = {name: np.ascontiguousarray(np.concatenate(parts)) for name, parts in feeds.items()}
        try:
            values = self.session.run(self.outputs, stacked)
        except Exception as err:  # noqa: BLE001 - every request of the batch gets the error, not a crash
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(f"onnxruntime: {err}")) for _ in requests]
        self.executions += 1
        responses, start = [], 0
        for count in rows:
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(value[start:start + count]))
                       for name, value in zip(self.outputs, values)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += count
        return responses

    def finalize(self):
        self.session = None
