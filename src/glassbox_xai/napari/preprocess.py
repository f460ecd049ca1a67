"""Preprocessing toggles of the Segment widget: the photometric techniques of the
training pipeline, each on or off with one value, applied to a copy of the image."""

from magicgui.widgets import CheckBox, Container, FloatSlider

from ..learn.augment import TECHNIQUES, build_preprocessing

PHOTOMETRIC = [name for name, tech in TECHNIQUES.items() if not tech.geometric and not tech.train_only]


class PreprocessPanel(Container):
    """One checkbox and one value slider per photometric technique."""

    def __init__(self):
        self._rows = {}
        rows = []
        for name in PHOTOMETRIC:
            tech = TECHNIQUES[name]
            label = name.replace("_", " ")
            box = CheckBox(text=label, value=False, tooltip=f"Apply {label} to the copy of the image that is segmented.")
            slider = FloatSlider(min=tech.limits[0], max=tech.limits[1], value=(tech.low + tech.high) / 2, step=0.01, enabled=False,
                                 tooltip=f"Strength of {label} (enabled when its box is ticked).")
            box.changed.connect(lambda on, s=slider: setattr(s, "enabled", on))
            self._rows[name] = (box, slider)
            rows.append(Container(widgets=[box, slider], layout="horizontal", labels=False))
        super().__init__(widgets=rows, labels=False)

    def config(self) -> dict:
        """The enabled techniques as a pipeline config, ``{name: {"value": v}}``."""
        return {name: {"value": float(slider.value)} for name, (box, slider) in self._rows.items() if box.value}

    def set(self, name: str, value: float) -> None:
        """Turn a technique on at ``value`` (for scripts and tests)."""
        box, slider = self._rows[name]
        box.value, slider.value = True, value

    def apply(self, image):
        """The image after the enabled techniques (the image itself when none is on)."""
        config = self.config()
        return build_preprocessing(config)(image=image)["image"] if config else image
