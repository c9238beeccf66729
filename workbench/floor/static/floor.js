// Crystal floor: per-image progress while a batch is counted, and the overlay zoom.
// No library, nothing loaded from elsewhere.
"use strict";

function followBatch(section) {
  const id = section.dataset.batch;
  const tick = async () => {
    let state;
    try {
      const response = await fetch(`/batches/${id}/progress`, {credentials: "same-origin"});
      if (!response.ok) return setTimeout(tick, 2000);
      state = await response.json();
    } catch (error) {
      return setTimeout(tick, 2000);
    }
    const finished = state.done + state.failed;
    document.getElementById("progress").value = finished;
    document.getElementById("progress-text").textContent =
      `${finished} of ${state.images} images done` + (state.status === "done" ? "" : ", counting…");
    for (const row of state.rows) {
      const cell = document.querySelector(`tr.image-row[data-idx="${row.idx}"] td.status`);
      if (cell && cell.parentElement.dataset.status !== row.status) {
        cell.parentElement.dataset.status = row.status;
        cell.textContent = row.status === "done" ? `done: ${row.count} crystals` : row.status;
        if (row.message) {
          const message = document.createElement("div");
          message.className = "error image-error";
          message.textContent = row.message;
          cell.appendChild(message);
        }
      }
    }
    if (state.status === "done") window.location.reload();
    else setTimeout(tick, 700);
  };
  tick();
}

function zoomable(image, slider, output) {
  const apply = () => {
    image.style.width = `${image.naturalWidth * slider.value / 100}px`;
    output.textContent = `${slider.value} %`;
  };
  slider.addEventListener("input", apply);
  document.getElementById("viewer").addEventListener("wheel", (event) => {
    event.preventDefault();
    slider.value = Number(slider.value) + (event.deltaY < 0 ? 25 : -25);
    apply();
  }, {passive: false});
  if (image.complete) apply(); else image.addEventListener("load", apply);
}

document.addEventListener("DOMContentLoaded", () => {
  const section = document.getElementById("batch");
  if (section && section.dataset.status !== "done") followBatch(section);
  const image = document.getElementById("overlay-full");
  if (image) zoomable(image, document.getElementById("zoom"), document.getElementById("zoom-value"));
});
