// trailkeep console: everything works without this script; with it, "Load
// more" appends the next page in place, and times show local time on hover.
"use strict";

function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) t.title = d.toLocaleString() + " (local time)";
  }
}

function showError(text) {
  let error = document.getElementById("error");
  if (!error) {
    error = document.createElement("p");
    error.id = "error";
    error.setAttribute("role", "alert");
    document.getElementById("main").prepend(error);
  }
  error.textContent = text;
}

async function loadMore(event) {
  const link = event.target.closest("a#more");
  if (!link || !link.dataset.rows) return;
  event.preventDefault();
  // One page at a time: a second click while one loads does nothing.
  if (link.getAttribute("aria-busy") === "true") return;
  link.setAttribute("aria-busy", "true");
  let response, text;
  try {
    response = await fetch(link.dataset.rows, { credentials: "same-origin" });
    text = await response.text();
  } catch (e) {
    link.removeAttribute("aria-busy");
    showError("The console did not answer: " + e);
    return;
  }
  if (!response.ok) {
    link.removeAttribute("aria-busy");
    showError(text);
    return;
  }
  const doc = new DOMParser().parseFromString(text, "text/html");
  const table = document.getElementById("events");
  const added = [...doc.querySelectorAll("tbody.event")];
  for (const body of added) {
    localTimes(body);
    table.append(document.adoptNode(body));
  }
  const next = doc.getElementById("more");
  if (next) {
    link.href = next.getAttribute("href");
    link.dataset.rows = next.dataset.rows;
    link.removeAttribute("aria-busy");
  } else {
    link.closest("p").remove();
  }
  // Keyboard users go on from the first new event.
  const first = added.length ? added[0].querySelector("summary") : null;
  if (first) first.focus();
}

// A running validation: its status, bar and counts updated in place each
// second (without JavaScript the page reloads itself), then its report.
async function pollValidation() {
  const status = document.getElementById("status");
  if (!status || status.textContent !== "running") return;
  try {
    const response = await fetch(location.href, { credentials: "same-origin" });
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const next = doc.getElementById("status");
    const report = doc.getElementById("report");
    if (response.ok && next && report) {
      localTimes(report);
      document.getElementById("report").replaceWith(document.adoptNode(report));
      status.className = next.className;
      status.textContent = next.textContent;
    }
  } catch (e) {
    // The next poll tries again.
  }
  setTimeout(pollValidation, 1000);
}

document.addEventListener("click", loadMore);
document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  setTimeout(pollValidation, 1000);
});
