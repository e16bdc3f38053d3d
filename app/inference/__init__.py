"""Inference: backends (Ollama, OpenAI-compatible servers, an in-process llama.cpp model) and the router."""
