"""Augmentation and synthetic ``Blank`` frames for training the sock classifier.

Every function takes an explicit ``numpy.random.RandomState`` so that a seed
reproduces the same images. Images are BGR uint8 throughout; the shared
:func:`sortcore.classifier.model.preprocess` turns them into network input afterwards.
"""

import cv2
import numpy as np


def random_resized_crop(image, rng, scale=(0.45, 1.0), ratio=(0.75, 1.333)):
    """A random crop covering ``scale`` of the area with aspect ``ratio``."""
    h, w = image.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        cw = int(round(np.sqrt(area * aspect)))
        ch = int(round(np.sqrt(area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            x = rng.randint(0, w - cw + 1)
            y = rng.randint(0, h - ch + 1)
            return image[y:y + ch, x:x + cw]
    return image


def rotate(image, angle):
    """Rotate about the centre, filling the corners by reflection."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def colour_jitter(image, rng, brightness=0.35, contrast=0.35, saturation=0.35, hue=8):
    """Random brightness, contrast, saturation and a small hue shift (degrees/2)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[:, :, 0] = (hsv[:, :, 0] + rng.uniform(-hue, hue)) % 180
    hsv[:, :, 1] *= rng.uniform(1 - saturation, 1 + saturation)
    hsv[:, :, 2] *= rng.uniform(1 - brightness, 1 + brightness)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    mean = out.mean()
    out = (out - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
    # A slight colour cast, as from a different white balance.
    out *= rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def blur_and_noise(image, rng, p_blur=0.4, p_noise=0.3):
    """Gaussian blur (out-of-focus, motion) and sensor noise, each at random."""
    if rng.rand() < p_blur:
        k = int(rng.choice([3, 5, 7]))
        image = cv2.GaussianBlur(image, (k, k), 0)
    if rng.rand() < p_noise:
        noise = rng.normal(0, rng.uniform(2, 10), image.shape).astype(np.float32)
        image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return image


def augment(image, rng, out_size=None):
    """One strongly augmented view of a sock photo: crop, rotation, flips, colour, blur.

    ``out_size`` (pixels) resizes the result, so later steps work on a small image.
    """
    view = random_resized_crop(image, rng)
    if out_size:
        view = cv2.resize(view, (out_size, out_size), interpolation=cv2.INTER_AREA)
    view = rotate(view, rng.uniform(0, 360))
    if rng.rand() < 0.5:
        view = view[:, ::-1]
    if rng.rand() < 0.5:
        view = view[::-1]
    view = colour_jitter(np.ascontiguousarray(view), rng)
    return blur_and_noise(view, rng)


def _wall_colour(rng):
    """A plausible wall/table/floor colour: mostly greys and beiges, sometimes anything."""
    if rng.rand() < 0.7:
        base = rng.uniform(60, 245)
        tint = rng.uniform(-25, 25, size=3) * np.array([1.0, 0.6, -0.2]) * rng.uniform(0, 1.5)
        return np.clip(base + tint[::-1], 0, 255)
    return rng.uniform(0, 255, size=3)


def _gradient(rng, size):
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xs + np.sin(angle) * ys
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    a, b = _wall_colour(rng), _wall_colour(rng)
    return a[None, None, :] * (1 - ramp[:, :, None]) + b[None, None, :] * ramp[:, :, None]


def _texture(rng, size):
    """Blurred noise at a random scale: plaster, carpet, wood, fabric."""
    cells = int(rng.choice([4, 8, 16, 32, 64]))
    noise = rng.normal(0, 1, (cells, cells)).astype(np.float32)
    if rng.rand() < 0.3:  # grain: stretch along one axis
        noise = cv2.resize(noise, (cells, max(2, cells // 8)))
    noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    noise = noise / (np.abs(noise).max() + 1e-6)
    colour = _wall_colour(rng)
    return colour[None, None, :] + noise[:, :, None] * rng.uniform(5, 45)


def _stripes(rng, size):
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, size / 2.0)
    wave = np.sign(np.sin((np.cos(angle) * xs + np.sin(angle) * ys) * 2 * np.pi / period))
    a, b = _wall_colour(rng), _wall_colour(rng)
    mix = (wave[:, :, None] + 1) / 2
    return a[None, None, :] * mix + b[None, None, :] * (1 - mix)


def blank(rng, size=128, kinds=5):
    """A synthetic frame with no sock: plain wall, gradient, texture, stripes or noise
    (``kinds`` 3: only the first three, a wall)."""
    kind = rng.randint(kinds)
    if kind == 0:
        image = np.ones((size, size, 3), np.float32) * _wall_colour(rng)[None, None, :]
    elif kind == 1:
        image = _gradient(rng, size)
    elif kind == 2:
        image = _texture(rng, size)
    elif kind == 3:
        image = _stripes(rng, size)
    else:
        image = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 4))
    if kind != 1 and rng.rand() < 0.5:  # uneven lighting
        image = image * (0.6 + 0.4 * _gradient(rng, size) / 255.0)
    image = np.clip(image + rng.normal(0, rng.uniform(0, 6), image.shape), 0, 255)
    return blur_and_noise(colour_jitter(image.astype(np.uint8), rng, hue=4), rng)
