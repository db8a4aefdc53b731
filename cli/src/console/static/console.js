// trailkeep console: everything works without this script; with it, "Load
// more" appends the next page in place, and times show local time on hover.
"use strict";

function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) t.title = d.toLocaleString() + " (local time)";
  }
}

async function loadMore(event) {
  const link = event.target.closest("a#more");
  if (!link || !link.dataset.rows) return;
  event.preventDefault();
  link.setAttribute("aria-busy", "true");
  const response = await fetch(link.dataset.rows, { credentials: "same-origin" });
  const text = await response.text();
  if (!response.ok) {
    link.removeAttribute("aria-busy");
    let error = document.getElementById("error");
    if (!error) {
      error = document.createElement("p");
      error.id = "error";
      error.setAttribute("role", "alert");
      document.getElementById("main").prepend(error);
    }
    error.textContent = text;
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

document.addEventListener("click", loadMore);
document.addEventListener("DOMContentLoaded", () => localTimes(document));
