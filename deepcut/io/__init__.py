"""Reading images and writing outputs (atomically)."""
from deepcut.io.images import IMAGE_EXTENSIONS, MAX_PIXELS, list_images, load_image, to_rgb
from deepcut.io.writers import atomic_path, read_label_map, save_image, save_json, save_label_map

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "atomic_path",
    "list_images",
    "load_image",
    "read_label_map",
    "save_image",
    "save_json",
    "save_label_map",
    "to_rgb",
]
