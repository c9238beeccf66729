"""Dataset browser: every dataset on every datasite the researcher is logged in to.

One card per (datasite, dataset): mock thumbnails (synthetic, never private pixels),
camera profile, image count, pixel size and description, from
:func:`workbench.remote.browse.dataset_cards`.

Examples
--------
>>> from workbench.remote import client
>>> sites = ["datasites/factory-a.toml"]
>>> factories = client.login(sites, "ana@uni.example", "...")  # doctest: +SKIP
>>> DatasetBrowser(factories)  # doctest: +SKIP
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from widgets._html import png_bytes
from workbench.remote import browse


class DatasetBrowser:
    """Cards of the datasets on every datasite of `clients`.

    Parameters
    ----------
    clients : dict
        ``{factory: syft DatasiteClient}`` from :func:`workbench.remote.client.login`.
    mock_images : int
        Mock thumbnails per dataset.
    thumbnail_px : int
        Longest side of a thumbnail in pixels.

    Attributes
    ----------
    cards : list of DatasetCard
        What the browser shows, one per (datasite, dataset).
    refresh_button : Button
        Reload from the datasites.
    cards_box : VBox
        One row per card: thumbnails and facts.
    widget : VBox
        The whole browser.
    """

    def __init__(self, clients: dict[str, Any], mock_images: int = 2, thumbnail_px: int = 160):
        self.clients = clients
        self.mock_images = mock_images
        self.thumbnail_px = thumbnail_px
        self.cards: list[browse.DatasetCard] = []
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.heading = w.HTML()
        self.cards_box = w.VBox()
        self.widget = w.VBox([w.HBox([self.heading, self.refresh_button]), self.cards_box])
        self.refresh_button.on_click(lambda _: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        """Fetch the dataset cards and mock images again."""
        self.cards = browse.dataset_cards(self.clients, self.mock_images)
        factories = sorted({card.factory for card in self.cards})
        self.heading.value = (
            f"<h3>{len(self.cards)} dataset(s) on {len(factories)} datasite(s)</h3>"
        )
        self.cards_box.children = [self._card_row(card) for card in self.cards]

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    def _card_row(self, card: browse.DatasetCard) -> w.HBox:
        thumbnails = [
            w.Image(value=png_bytes(image, self.thumbnail_px), format="png")
            for image in card.mock_images
        ]
        return w.HBox(
            [w.HTML(card_html(card)), *thumbnails],
            layout=w.Layout(border="1px solid #ddd", padding="6px", margin="4px 0"),
        )


def card_html(card: browse.DatasetCard) -> str:
    """The facts of one dataset card as a small HTML table.

    Examples
    --------
    >>> card = browse.DatasetCard("factory-a", "line-1", "legacy", 2.0, 12, 1, "12 images")
    >>> "2 µm/px" in card_html(card)
    True
    """
    images = "?" if card.images is None else str(card.images)
    rows = [
        ("datasite", card.factory),
        ("camera", card.camera),
        ("pixel size", f"{card.pixel_size_um:g} µm/px"),
        ("images", f"{images} in {card.assets} batch(es)"),
        ("about", card.description),
    ]
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:10px'>{name}</th>"
        f"<td>{html.escape(value)}</td></tr>"
        for name, value in rows
    )
    return f"<b>{html.escape(card.dataset)}</b><table>{cells}</table><i>mock images:</i>"
