"""The InferenceService and InferenceNodePool API: pydantic models that generate the CRDs."""
