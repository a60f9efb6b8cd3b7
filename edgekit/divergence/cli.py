"""The ``edgekit debug`` command's work: trace each artifact, print, and write JSON / HTML."""
from __future__ import annotations

import json
from pathlib import Path

from edgekit.atomic import atomic_write_text
from edgekit.errors import InvalidOptionError


def run_debug(artifacts: tuple[str, ...], calibration: str, data: str | None, reference: str | None, samples: int,
              json_path: str | None, html_path: str | None) -> None:
    """Trace every artifact (``reference`` only with one artifact), print each report, write the files asked."""
    from edgekit.divergence import debug
    from edgekit.divergence.console import print_report
    from edgekit.divergence.html import write_html

    if reference is not None and len(artifacts) > 1:
        raise InvalidOptionError("--reference applies to one artifact, several were given",
                                 "trace the artifacts one by one, or let each find its build's fp32 artifact")
    reports = [
        debug(path, data or calibration, calibration=calibration, reference=reference, samples=samples)
        for path in artifacts
    ]
    for report in reports:
        print_report(report)
    if json_path:
        document = reports[0].model_dump(mode="json") if len(reports) == 1 else {
            "schema_version": reports[0].schema_version, "reports": [r.model_dump(mode="json") for r in reports]}
        atomic_write_text(Path(json_path), json.dumps(document, indent=2) + "\n")
    if html_path:
        write_html(reports, html_path)
