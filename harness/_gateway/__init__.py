"""The reference prefab gateway (Starlette): serves manifest functions as SSE streams."""
