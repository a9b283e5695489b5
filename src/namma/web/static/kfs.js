// Renders a loan's Key Facts Statement from GET /api/loans/{id}/kfs (the page computes nothing).
(function () {
  "use strict";
  const root = document.getElementById("kfs");
  if (!root) return;
  const rupees = (v) => v === null || v === undefined ? "—"
    : Number.isNaN(Number(v)) ? v : formatIndian(v);

  // Indian digit grouping on the decimal string itself (no float arithmetic on money).
  function formatIndian(text) {
    const negative = text.startsWith("-");
    const [whole, fraction] = (negative ? text.slice(1) : text).split(".");
    let head = whole.slice(0, -3), tail = whole.slice(-3);
    if (head) tail = "," + tail;
    head = head.replace(/\B(?=(\d{2})+(?!\d))/g, ",");
    return (negative ? "-" : "") + head + tail + (fraction !== undefined ? "." + fraction : "");
  }

  function row(table, cells) {
    const tr = document.createElement("tr");
    cells.forEach((c, i) => {
      const cell = document.createElement(i === 0 && table.id === "kfs-facts" ? "th" : "td");
      cell.textContent = c;
      tr.appendChild(cell);
    });
    (table.tBodies[0] || table).appendChild(tr);
  }

  fetch(`/api/loans/${root.dataset.loanId}/kfs`, { credentials: "same-origin" })
    .then(async (response) => {
      const data = await response.json();
      const status = document.getElementById("kfs-status");
      if (!response.ok) { status.textContent = data.error ? data.error.message : "Not available."; return; }
      status.textContent = data.projected
        ? "Projected as if disbursed today; the schedule is fixed at disbursement."
        : "As disbursed.";
      const facts = document.getElementById("kfs-facts");
      [
        ["Lender", `${data.lender.name}, ${data.lender.branch}`],
        ["Borrower", `${data.borrower.name} (${data.borrower.phone})`],
        ["Loan number", data.loan_number],
        ["Product", `${data.product.name} (${data.product.code} v${data.product.version})`],
        ["Sanctioned amount (₹)", rupees(data.sanctioned_amount)],
        ["Deducted at disbursement (₹)", rupees(data.deducted_at_disbursement)],
        ["Net amount disbursed (₹)", rupees(data.net_disbursed)],
        ["Interest rate (annual, " + data.interest_method + ")", data.annual_rate_percent + " %"],
        ["Annual percentage rate (APR)", data.apr_percent + " %"],
        ["Installments", `${data.installments} × ₹${rupees(data.installment_amount)} (${data.frequency})`],
        ["Total interest (₹)", rupees(data.total_interest)],
        ["Total repayable (₹)", rupees(data.total_repayable)],
        ["First due / maturity", `${data.first_due_on} / ${data.maturity_on}`],
        ["Penal charges", data.penal_charges ? JSON.stringify(data.penal_charges) : "None"],
        ["Prepayment", data.prepayment],
        ["Grievance redressal", data.grievance_contact],
      ].forEach((pair) => row(facts, pair));
      const charges = document.getElementById("kfs-charges");
      data.charges.forEach((c) => row(charges, [c.name, c.when, rupees(c.amount)]));
      const schedule = document.getElementById("kfs-schedule");
      data.schedule.forEach((r) => row(schedule, [r.number, r.due_date, rupees(r.principal),
        rupees(r.interest), rupees(r.fees), rupees(r.total), rupees(r.balance)]));
    });
})();
