"""Meta-World demonstrations: the scripted experts' episodes as keyframe samples in the shared cache."""
