// Front end of widgets.annotate.AnnotationCanvas (an anywidget ES module, no build step).
// Shows the PNG the Python side draws and sends every click back in image pixels.
// Traits: "picture" (PNG bytes), "image_width" and "image_height" (pixels of the
// annotated image), "click" ({x: column, y: row, seq: click number}).

function clickInImagePixels(canvas, event, model) {
  const box = canvas.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) / box.width) * model.get("image_width") - 0.5,
    y: ((event.clientY - box.top) / box.height) * model.get("image_height") - 0.5,
  };
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.style.maxWidth = "100%";
  canvas.style.height = "auto";
  canvas.style.cursor = "crosshair";
  el.appendChild(canvas);
  const context = canvas.getContext("2d");

  async function draw() {
    const png = model.get("picture");
    if (!png || png.byteLength === 0) return;
    const bitmap = await createImageBitmap(new Blob([png], { type: "image/png" }));
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    context.drawImage(bitmap, 0, 0);
    bitmap.close();
  }

  function onClick(event) {
    const { x, y } = clickInImagePixels(canvas, event, model);
    const seq = (model.get("click").seq || 0) + 1;
    model.set("click", { x, y, seq });
    model.save_changes();
  }

  canvas.addEventListener("click", onClick);
  model.on("change:picture", draw);
  draw();
  return () => {
    model.off("change:picture", draw);
    canvas.removeEventListener("click", onClick);
  };
}

export default { render };
