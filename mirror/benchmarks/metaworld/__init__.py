"""Meta-World (MuJoCo): seeded scenes and cameras, the keyframe controller and scripted experts, tasks and
instructions, demonstrations as keyframe samples in the shared cache, the data module and rollouts."""
