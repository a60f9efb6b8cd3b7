"""The Devices view: the local CPU and every runtime's accelerators with their state, and edgekit agents
found on the network or added by address and token. Probing runs in job processes."""
from __future__ import annotations

from typing import Any

from edgekit.gui.devices import DeviceRow, agent_detail, agent_failure_state, agent_row, host_rows, profile_devices
from edgekit.gui.jobs import AgentRequest, DeviceChoice, DevicesRequest
from edgekit.gui.runner import JobRunner
from edgekit.gui.widgets import ErrorPanel, JobStrip, heading, item, table
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class DevicesView(QWidget):
    """Lists what can run artifacts; ``devices_changed`` carries the choices a profiling run can use."""

    devices_changed = Signal(list)  # DeviceChoice
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host_rows: list[DeviceRow] = []
        self.agents: dict[str, DeviceRow] = {}
        self.tokens: dict[str, str] = {}
        self.prober = JobRunner(self)
        self.agent_checker = JobRunner(self)

        self.host_label = QLabel("Looking at this computer …", wordWrap=True)
        self.host_label.setStyleSheet("color:#444")
        self.table = table(["device", "kind", "runtime", "state", "why / details", "profile as"], stretch=4)
        self.table.itemSelectionChanged.connect(self._selected)
        self.scan_seconds = QDoubleSpinBox(minimum=0, maximum=30, value=1.5, suffix=" s", singleStep=0.5)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(self.host_label, 1)
        top.addWidget(QLabel("look for agents for"))
        top.addWidget(self.scan_seconds)
        top.addWidget(self.refresh_button)

        self.address = QLineEdit(placeholderText="HOST:PORT or agent://HOST:PORT")
        self.token = QLineEdit(placeholderText="the agent's token", echoMode=QLineEdit.EchoMode.Password)
        self.add_button = QPushButton("Add agent")
        self.add_button.clicked.connect(self.add_agent)
        agent_box = QGroupBox("Add an agent (a device running `edgekit agent`)")
        agent_row_layout = QHBoxLayout(agent_box)
        agent_row_layout.addWidget(self.address, 2)
        agent_row_layout.addWidget(self.token, 2)
        agent_row_layout.addWidget(self.add_button)

        self.error = ErrorPanel()
        self.job = JobStrip()
        self.job.cancel_requested.connect(self.prober.cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Devices"))
        layout.addLayout(top)
        layout.addWidget(self.job)
        layout.addWidget(self.error)
        layout.addWidget(self.table, 1)
        layout.addWidget(agent_box)

        self.prober.progress.connect(self.job.update)
        self.prober.succeeded.connect(self._probed)
        self.prober.failed.connect(self._probe_failed)
        self.prober.cancelled.connect(lambda message: self.job.finished("Cancelled"))
        self.prober.running_changed.connect(lambda running: self.refresh_button.setEnabled(not running))
        self.agent_checker.succeeded.connect(self._agent_ok)
        self.agent_checker.failed.connect(self._agent_failed)
        self.agent_checker.running_changed.connect(lambda running: self.add_button.setEnabled(not running))

    def refresh(self) -> None:
        """Ask the runtimes (and the network) what is there, in a job process."""
        if self.prober.start(DevicesRequest(scan_seconds=self.scan_seconds.value())):
            self.job.started("Looking for devices …")

    def _probed(self, data: dict[str, Any]) -> None:
        host = data["host"]
        self.host_rows = host_rows(host, data["devices"])
        for address in data.get("agents", []):
            if address not in self.agents:
                self.agents[address] = agent_row(address, "found", "announced on the network; add its token to use it")
        memory = host.get("memory_bytes")
        self.host_label.setText(f"<b>{host['hostname']}</b> · {host['cpu']} · {host['cpu_count']} cores"
                                + (f" · {memory / 2**30:.1f} GB" if memory else "") + f" · {host['system']} {host['machine']}")
        found = len(data.get("agents", []))
        agents_text = data.get("agents_error") or f"{found} agent(s) found on the network"
        self.job.finished(f"Up to date · {agents_text}")
        self._fill()

    def _probe_failed(self, message: str, hint: str) -> None:
        self.job.finished("Failed")
        self.error.show_error(message, hint)

    def add_agent(self) -> None:
        address, token = self.address.text().strip(), self.token.text().strip()
        self.error.clear()
        if not address or not token:
            self.error.show_error("an agent needs an address and a token",
                                  "give HOST:PORT and the token the agent printed or was started with")
            return
        self.agent_checker.start(AgentRequest(address=address, token=token))
        self.status_message.emit(f"contacting the agent at {address} …")

    def _agent_ok(self, data: dict[str, Any]) -> None:
        row = agent_row(data["address"], "available", agent_detail(data.get("host")))
        self.agents[row.device] = row
        self.tokens[row.device] = self.token.text().strip()
        self.status_message.emit(f"agent {row.device} added")
        self._fill()

    def _agent_failed(self, message: str, hint: str) -> None:
        address = self.address.text().strip()
        row = agent_row(address, agent_failure_state(message), message)
        self.agents[row.device] = row
        self.error.show_error(message, hint)
        self._fill()

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            row = self.rows()[rows[0].row()]
            if row.kind == "agent":
                self.address.setText(row.device)

    def rows(self) -> list[DeviceRow]:
        return [*self.host_rows, *self.agents.values()]

    def choices(self) -> list[DeviceChoice]:
        """The devices a profiling run can use now."""
        return [DeviceChoice(device=d, token=self.tokens.get(d)) for d in profile_devices(self.rows())]

    def _fill(self) -> None:
        self.table.setRowCount(0)
        for row in self.rows():
            index = self.table.rowCount()
            self.table.insertRow(index)
            cells = (item(row.name), item(row.kind), item(row.runtime), item(row.state, row.state),
                     item(row.detail, tooltip=row.detail), item(row.device if row.state == "available" and row.device else "-"))
            for column, cell in enumerate(cells):
                self.table.setItem(index, column, cell)
        self.table.resizeColumnToContents(0)
        self.devices_changed.emit(self.choices())

