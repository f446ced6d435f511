"""The model-server EMULATOR: emulated vLLM/TGI/SGLang metrics for tests and the demo."""
