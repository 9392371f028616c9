"""Action understanding (U): ViCLIP, a video-text CLIP that recognises instructions from clips."""
