// Drawing pad: records strokes in CSS pixels from Pointer Events and paints them smoothly at the device's pixel ratio.

const MIN_PEN = 6;
const MAX_PEN = 22;
// Points closer than this (CSS px) to the previous one add nothing but payload.
const MIN_STEP = 0.75;

/** Pen width in CSS pixels for a canvas: thick enough to read, thin enough for several digits. */
export function penWidthFor(width, height) {
  return Math.round(Math.min(MAX_PEN, Math.max(MIN_PEN, Math.min(width, height) * 0.045)));
}

export class DrawingPad {
  /** canvas: the <canvas>; onChange(strokes) runs after every change of the drawing. */
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.onChange = onChange;
    this.strokes = [];
    this.active = null; // { pointerId, points }
    this.width = 0;
    this.height = 0;
    this.#listen();
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
  }

  get penWidth() { return penWidthFor(this.width, this.height); }
  get isEmpty() { return this.strokes.length === 0; }

  /** The drawing as the protocol sends it: finished strokes plus the one being drawn. */
  snapshot() {
    const strokes = this.strokes.map((points) => points.map(([x, y]) => [round1(x), round1(y)]));
    // pen_down marks a preview: a busy server answers drawings whose pen was lifted first.
    return { width: this.width, height: this.height, pen_width: this.penWidth, strokes, pen_down: this.active !== null };
  }

  clear() {
    this.strokes = [];
    this.active = null;
    this.#changed();
  }

  undo() {
    if (this.active) this.active = null;
    this.strokes.pop();
    this.#changed();
  }

  /** Match the backing store to the CSS size times devicePixelRatio so ink stays sharp. */
  resize() {
    const rect = this.canvas.getBoundingClientRect();
    const width = Math.max(1, Math.round(rect.width));
    const height = Math.max(1, Math.round(rect.height));
    const ratio = window.devicePixelRatio || 1;
    if (this.width && (width !== this.width || height !== this.height)) {
      this.#rescale(width / this.width, height / this.height);
    }
    this.width = width;
    this.height = height;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.context.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.paint();
    if (!this.isEmpty) this.onChange(this.strokes);
  }

  paint() {
    const ctx = this.context;
    ctx.clearRect(0, 0, this.width, this.height);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = this.penWidth;
    ctx.strokeStyle = ctx.fillStyle = getComputedStyle(this.canvas).color;
    for (const points of this.strokes) paintStroke(ctx, points, this.penWidth);
  }

  #rescale(sx, sy) {
    // A rotated phone or a resized window keeps the drawing in proportion to the canvas.
    // Points are scaled in place: the stroke being drawn keeps its array.
    const scale = Math.min(sx, sy);
    for (const points of this.strokes) {
      for (const point of points) {
        point[0] *= scale;
        point[1] *= scale;
      }
    }
  }

  #changed() {
    this.paint();
    this.onChange(this.strokes);
  }

  #listen() {
    const canvas = this.canvas;
    canvas.addEventListener("pointerdown", (event) => this.#down(event));
    canvas.addEventListener("pointermove", (event) => this.#move(event));
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      canvas.addEventListener(type, (event) => this.#up(event));
    }
    // Safari still scrolls on touchmove unless it is cancelled, even with touch-action: none.
    canvas.addEventListener("touchmove", (event) => event.preventDefault(), { passive: false });
  }

  #down(event) {
    if (this.active || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    this.canvas.setPointerCapture?.(event.pointerId);
    const points = [this.#point(event)];
    this.active = { pointerId: event.pointerId, points };
    this.strokes.push(points);
    this.#changed();
  }

  #move(event) {
    if (!this.active || event.pointerId !== this.active.pointerId) return;
    event.preventDefault();
    // Coalesced events carry the points the browser merged into one frame: smoother curves.
    const events = event.getCoalescedEvents?.() ?? [];
    for (const each of events.length ? events : [event]) this.#add(this.#point(each));
    this.#changed();
  }

  #up(event) {
    if (!this.active || event.pointerId !== this.active.pointerId) return;
    this.active = null;
    this.#changed();
  }

  #add(point) {
    const points = this.active.points;
    const [lastX, lastY] = points[points.length - 1];
    if (Math.hypot(point[0] - lastX, point[1] - lastY) >= MIN_STEP) points.push(point);
  }

  #point(event) {
    const rect = this.canvas.getBoundingClientRect();
    // The pen may run off the canvas while pressed; keep its points on the canvas.
    return [clamp(event.clientX - rect.left, 0, this.width), clamp(event.clientY - rect.top, 0, this.height)];
  }
}

/** Quadratic curves through the midpoints of the recorded points: smooth at any sampling rate. */
function paintStroke(ctx, points, pen) {
  const [x0, y0] = points[0];
  if (points.length === 1) {
    ctx.beginPath();
    ctx.arc(x0, y0, pen / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  for (let i = 1; i < points.length - 1; i += 1) {
    const [x, y] = points[i];
    const [nx, ny] = points[i + 1];
    ctx.quadraticCurveTo(x, y, (x + nx) / 2, (y + ny) / 2);
  }
  const [xn, yn] = points[points.length - 1];
  ctx.lineTo(xn, yn);
  ctx.stroke();
}

function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }
function round1(value) { return Math.round(value * 10) / 10; }
