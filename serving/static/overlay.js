// Result display: the recognized number and each digit's box, label and confidence over the ink.

const PLACEHOLDER = "Draw a number";
const NOTHING_FOUND = "No digits found";
const LABEL_ROOM = 22;

/** Show the result text, or a neutral placeholder: an empty canvas never shows a guess. */
export function showText(output, text, { empty, digits = [] }) {
  const state = empty ? "empty" : text ? "number" : "none";
  output.dataset.state = state;
  output.textContent = state === "number" ? text : empty ? PLACEHOLDER : NOTHING_FOUND;
  if (state === "number") markUnsure(output, text, digits);
  // More rows get a smaller font so that the panel keeps its height.
  output.dataset.lines = String(Math.min(3, Math.max(1, text.split("\n").length)));
}

function markUnsure(output, text, digits) {
  // The text is the digits' labels in reading order, rows split by newlines; when it matches,
  // each digit gets a span so the unsure ones stand out in the number too.
  const chars = [...text.replaceAll("\n", "")];
  if (chars.length !== digits.length || digits.some((d, i) => String(d.label) !== chars[i])) return;
  let index = 0;
  output.replaceChildren(...[...text].map((char) => {
    if (char === "\n") return document.createTextNode(char);
    const span = document.createElement("span");
    span.textContent = char;
    if (digits[index++].unsure) span.className = "unsure";
    return span;
  }));
}

/** Replace the overlay's boxes with one per digit; boxes are in canvas CSS pixels like the strokes. */
export function showDigits(overlay, digits) {
  overlay.replaceChildren(...digits.map(digitBox));
}

function digitBox(digit) {
  const [x, y, width, height] = digit.box;
  const box = document.createElement("div");
  box.className = digit.unsure ? "digit-box unsure" : "digit-box";
  // A box at the top of the pad has no room above it: its label goes inside.
  if (y < LABEL_ROOM) box.classList.add("label-inside");
  Object.assign(box.style, { left: `${x}px`, top: `${y}px`, width: `${width}px`, height: `${height}px` });
  const label = document.createElement("span");
  label.className = "digit-label";
  // Floor, so that 100 % is shown only for a certain reading.
  const percent = Math.floor(digit.confidence * 100);
  label.textContent = `${digit.label}${digit.unsure ? "?" : ""} ${percent}%`;
  box.title = describe(digit);
  box.append(label);
  return box;
}

function describe(digit) {
  // The runner-up candidates explain an unsure reading ("4 or 9?").
  const others = (digit.candidates || []).slice(1).map(([label, p]) => `${label} ${Math.floor(p * 100)}%`);
  const lead = `${digit.unsure ? "Unsure: " : ""}${digit.label} (${Math.floor(digit.confidence * 100)}%)`;
  return others.length ? `${lead}; also ${others.join(", ")}` : lead;
}
