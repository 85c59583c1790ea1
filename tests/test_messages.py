"""Every message a chapter-1 / chapter-2a panel shows for the mistakes students make is in the
student's language and speaks about the panel (issue 8, item 3).

The real panels (``labkit.ui.ch1`` / ``ch2``) are driven headless with the bad inputs students were
seen to type; each plan error, plan note and run result message is collected and judged:

* Chinese UI: no English prose. Commands, paths, quoted values, identifiers, units and product
  names are Latin by nature and allowed (:func:`latin_prose` strips them first).
* English UI: no Chinese outside quoted values.
* A message about a field names the label on screen (「文件名」, 「允许覆盖（保留备份）」), never the
  Python keyword (``overwrite=True``) or a step class (``SaveImage``).
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labkit.checks import CheckResult
from labkit.i18n import use_lang
from labkit.steps.base import Plan
from labkit.ui import ch1, ch2, ch3, ch4, session
from labkit.ui.panel import StepPanel

pytest_plugins = ["docker_fixtures"]

# -- the classifier ------------------------------------------------------------------------------
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
#: Spans that are Latin by nature: code spans, URLs, quoted values (the student's own input, repr'd,
#: or a tool's own words such as QEMU's “failed to find romfile”).
_VERBATIM = re.compile(
    r"`[^`]*`"
    r"|\b[a-z][a-z0-9+.-]*://\S+"
    r"|'[^'\n]*'"
    r"|\"[^\"\n]*\""
    r"|“[^”]*”"
)
#: A CJK character, full-width punctuation or a list separator ends a run of Latin words.
_BREAK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef;,]+")
#: Programs whose command lines the messages quote (a run starting with one is a command).
COMMANDS = frozenset(
    """sudo apt apt-get apt-cache dpkg qm bcdedit systemctl docker qemu-img qemu-system-aarch64 pip pip3
    python3 unzip zstd gzip tar VBoxManage usermod cp truncate dd growpart resize2fs debootstrap
    labkit ls du virt-install virsh env buildx""".split()  # noqa: SIM905
)
#: English words that only prose uses: one of them left over means a sentence leaked.
STOPWORDS = frozenset(
    """a an the is are was were be been not nor and or but if unless then than to of in on at by
    for from with without into onto as it its this that these those there here has have had do does
    did can cannot could will would should must may might please use using give pass passed set
    choose run runs running ran first again already only also yet more less too very all any each
    every what which who how why when where because so such found missing exists exist
    failed fails refusing refused points outside inside directory file files name plain size count
    whole number installed install instead e.g i.e""".split()  # noqa: SIM905 - a word list reads best as text
)
#: Proper nouns and product names that Chinese text uses as they are.
PROPER = frozenset(
    """QEMU KVM TCG UEFI EFI Docker Dockerfile BuildKit CUDA PyTorch NVIDIA GPU CPU VM Linux Ubuntu
    Debian Windows VirtualBox Hyper PVE Proxmox Cockpit libvirt VHD VMDK VDI NAT PowerShell Jupyter
    JupyterLab GiB MiB KiB TiB GB MB KB TB sha256 JSON TLS HTTP HTTPS labkit pflash virt busybox""".split()  # noqa: SIM905
)


def _is_identifier(token: str) -> bool:
    """Commands, options, paths, file names, sizes, references: anything with a digit or a symbol."""
    return bool(re.search(r"[0-9_=/.:@<>$\\{}\[\]|+*#%~-]", token))


def latin_prose(text: str) -> list[str]:
    """The runs of English prose in ``text`` (empty: nothing but Chinese and identifiers)."""
    found: list[str] = []
    for segment in _BREAK.split(_VERBATIM.sub(" ", text)):
        tokens = segment.split()
        if tokens and (tokens[0] in COMMANDS or any(re.match(r"--?[A-Za-z]", t) for t in tokens)):
            continue  # a command line, options and all
        words = []
        for token in tokens:
            token = token.strip(",;!?()\"'“”‘’")
            if not token or _is_identifier(token) or not re.fullmatch(r"[A-Za-z]+", token):
                continue
            if token in PROPER or (token.isupper() and len(token) <= 6):
                continue
            words.append(token)
        if any(w.lower() in STOPWORDS for w in words) or len(words) >= 3:
            found.append(" ".join(words))
    return found


def chinese_outside_quotes(text: str) -> list[str]:
    return _CJK.findall(_VERBATIM.sub(" ", text))


def test_the_classifier_tells_prose_from_identifiers():
    assert latin_prose("name：'../../etc/passwd' points outside the work directory; use a plain file name")
    assert latin_prose("memory: 'abc' is not a size")
    assert latin_prose("未经你同意，不会删除 6 个对象；确认后传 consent=True without consent")
    assert latin_prose("镜像来源：the host's own Debian mirror")
    assert latin_prose("`qemu-img info x` exited with status 1")
    assert not latin_prose("文件名：'../../etc/passwd' 指向工作目录之外；用不带 .. 的文件名")
    assert not latin_prose("qemu-img create -f qcow2 /tmp/a.qcow2 120G 只是上限；KVM 不可用，QEMU 使用 TCG")
    assert not latin_prose("勾选「允许覆盖（保留备份）」；镜像 labkit/busybox:local 已存在（exited）")
    assert not latin_prose("用 docker save 或「保存并压缩镜像」生成；见 https://docs.docker.com/engine/")
    assert chinese_outside_quotes("file name: '中文.img' 不是大小") == ["不", "是", "大", "小"]
    assert not chinese_outside_quotes("note: 'it is 中文' was written")


# -- driving the panels --------------------------------------------------------------------------
Seen = list[tuple[str, str]]


def _texts(where: str, shown: Plan | CheckResult) -> Seen:
    """What the panel shows for a plan or a result: reason, notes, message and the fix it names."""
    if isinstance(shown, Plan):
        return [(f"{where} plan", shown.reason), *((f"{where} note", n) for n in shown.notes)]
    out = [(f"{where} {shown.status}", shown.message)]
    for key in ("fix", "how"):
        if isinstance(shown.evidence.get(key), str) and shown.evidence[key]:
            out.append((f"{where} {key}", shown.evidence[key]))
    return out


def _plan(seen: Seen, where: str, panel: StepPanel, **values) -> Plan | CheckResult:
    shown = panel.set(**values).plan()
    seen.extend(_texts(where, shown))
    return shown


def _run(seen: Seen, where: str, panel: StepPanel, **values) -> CheckResult:
    _plan(seen, where, panel, **values)
    result = panel.run("auto")
    seen.extend(_texts(where, result))
    return result


def _isolated(lang: str, body: Callable[[], Seen]) -> Seen:
    """Run ``body`` as a fresh kernel in ``lang`` would: its own context, nothing leaks out."""

    def fresh() -> Seen:
        with use_lang(lang):
            return body()

    return contextvars.copy_context().run(fresh)


def chapter1(work_dir: Path) -> tuple[Seen, dict[str, CheckResult | Plan]]:
    """The chapter-1 mistakes; returns everything shown and the results the tests look at."""
    seen: Seen = []
    keep: dict[str, CheckResult | Plan] = {}
    work = session(work_dir)

    create = ch1.create_image(work, "disk.qcow2", size="1M")
    keep["escape"] = _plan(seen, "create", create, name="../../etc/passwd")
    keep["bad_size"] = _plan(seen, "create", create, name="disk.qcow2", size="abc")
    keep["created"] = _run(seen, "create", create, size="1M")
    keep["differs"] = _run(seen, "create", create, size="2M")  # exists, differs, no checkbox
    keep["differs_plan"] = create.plan()

    convert = ch1.convert_image(work, "disk.qcow2", "disk.vhd", dst_format="vpc")
    keep["src_typo"] = _plan(seen, "convert", convert, src_format="qcow")
    _plan(seen, "convert", convert, src_format="vhdd")
    keep["compress_raw"] = _plan(seen, "convert", convert, src_format="", dst_format="raw", compress=True)
    (work.path / "disk.vhd").write_bytes(b"not an image\n" * 100)  # a target that differs
    keep["convert_differs"] = _run(seen, "convert", convert, dst_format="vpc", compress=False)

    fill = ch1.fill_image(work, "data.img", size="1M")
    _run(seen, "fill", fill)  # no such image yet
    _plan(seen, "fill", fill, size="abc")
    _run(seen, "fill", fill, name="disk.qcow2", size="1M")  # not a raw image

    resize = ch1.resize_image(work, "disk.qcow2", "512K")
    keep["shrink"] = _run(seen, "resize", resize)
    keep["resize_missing"] = _run(seen, "resize", resize, name="nope.qcow2")
    _run(seen, "resize", resize, name="disk.qcow2", size="-1G")

    info = ch1.image_info(work, "nope.qcow2")
    _run(seen, "info", info)
    _plan(seen, "info", info, name="../x")

    efi = ch1.efi_image(work)
    (work.path / "efi.img").write_bytes(b"an old file\n")
    keep["efi_differs"] = _run(seen, "efi", efi)
    _plan(seen, "efi", efi, name="../efi.img")

    vm = ch1.vm_command(work)
    keep["vm_memory"] = _plan(seen, "vm", vm, memory="abc")
    keep["vm_smp"] = _plan(seen, "vm", vm, memory="1G", smp=0)
    _plan(seen, "vm", vm, smp=64)
    _plan(seen, "vm", vm, smp=2, machine="vir t")
    _plan(seen, "vm", vm, machine="virt", disk="../../etc/passwd")

    boot = ch1.boot_guest()
    keep["boot_smp"] = _plan(seen, "boot", boot, smp=0)
    keep["boot_memory"] = _plan(seen, "boot", boot, smp=1, memory="abc")
    _plan(seen, "boot", boot, memory="64M")
    _plan(seen, "boot", boot, memory="512M", timeout=-1.0)

    host = ch1.host_check()
    _plan(seen, "host", host, vm_cores=0)
    _plan(seen, "host", host, vm_cores=4, vm_memory="abc")
    _run(seen, "host", host, vm_memory="1G")  # what this host can do, KVM or not

    plan = ch1.consolidation()
    _plan(seen, "consolidation", plan, workloads="mail=abc")
    _plan(seen, "consolidation", plan, workloads="mail=30%", hosts=0)
    _plan(seen, "consolidation", plan, hosts=3, target=2.0)

    pve = ch1.pve_kvm_off(work)
    keep["pve_consent"] = _run(seen, "pve", pve)
    _plan(seen, "pve", pve, key="KVM")
    _plan(seen, "pve", pve, key="kvm", value="maybe")
    destroy = ch1.pve_destroy()
    _run(seen, "pve-destroy", destroy, vmid=5)
    _run(seen, "pve-destroy", destroy, vmid=100)

    vbox = ch1.virtualbox_networks()
    _plan(seen, "vbox", vbox, nic=0)
    _run(seen, "hyperv", ch1.hyperv())
    _run(seen, "libvirt", ch1.libvirt_install("student"))
    keep["guest_plan"] = _plan(seen, "guest", ch1.prepare_guest())
    return seen, keep


def chapter2(work_dir: Path) -> tuple[Seen, dict[str, CheckResult | Plan]]:
    """The chapter-2a mistakes that need no Docker engine (plans and input checks)."""
    seen: Seen = []
    keep: dict[str, CheckResult | Plan] = {}
    work = session(work_dir)
    keep["debian_base"] = _plan(seen, "base", ch2.local_base("debian"))
    _plan(seen, "base", ch2.local_base("busybox"))
    commit = ch2.commit_container()
    _plan(seen, "commit", commit)
    _plan(seen, "commit", commit, image="Bad Name")
    save = ch2.save_image(work)
    _plan(seen, "save", save)
    _plan(seen, "save", save, name="../../etc/passwd")
    _plan(seen, "save", save, name="image.zip")
    _plan(seen, "load", ch2.load_image(work, "nope.tar.gz"))
    _plan(seen, "run-image", ch2.run_image("UPPER/Case"))

    build = ch2.build_image(work)
    first = _plan(seen, "build", build)
    assert isinstance(first, Plan), first
    # the panel writes its Dockerfile when it runs; a changed base then needs the checkbox
    for path, text in first.files.items():
        Path(path).write_text(text, encoding="utf-8")
    keep["build_base_changed"] = _plan(seen, "build", build, base_image="debian:12-slim")
    _plan(seen, "build", build, base_image="nvidia/cuda:bad tag")
    _plan(seen, "build", build, base_image="debian:12-slim", overwrite=True, user="bad user")
    _plan(seen, "gpu", ch2.gpu_run())
    _plan(seen, "torch", ch2.torch_gpu(), size=0)
    return seen, keep


def chapter3(work_dir: Path) -> tuple[Seen, dict[str, CheckResult | Plan]]:
    """The chapter-3 mistakes: exercise answers, network ids, sizes, missing consent (no daemon
    needed: without one the ZeroTier panels say what to install)."""
    seen: Seen = []
    keep: dict[str, CheckResult | Plan] = {}
    work = session(work_dir)
    quiz = ch3.hci_quiz()
    keep["quiz_blank"] = _run(seen, "quiz", quiz)
    keep["quiz_two"] = _plan(seen, "quiz", quiz, q1="AB")
    keep["quiz_unknown"] = _plan(seen, "quiz", quiz, q1="Z")
    keep["quiz_wrong"] = _run(seen, "quiz", quiz, q1="B", q2="B", q3="C", q4="D", q5="B")
    _run(seen, "nested", ch3.nested_check(), vm="my vm;rm")
    join = ch3.zt_join()
    keep["join_id"] = _plan(seen, "join", join, network="8056c2e21c00000g")
    _plan(seen, "join", join, network="8056c2e21c000001", via="api")
    _run(seen, "join", join, via="cli")
    keep["leave"] = _plan(seen, "leave", ch3.zt_leave())
    _run(seen, "leave", ch3.zt_leave(), network="xyz")
    _run(seen, "status", ch3.zt_status())
    _run(seen, "networks", ch3.zt_networks(), via="api")
    _plan(seen, "compression", ch3.compression(work), size="abc")
    keep["kvm_consent"] = _run(seen, "kvm", ch3.pve_kvm_off(work))
    _run(seen, "destroy", ch3.pve_destroy(), vmid=5)
    return seen, keep


def chapter4(work_dir: Path) -> tuple[Seen, dict[str, CheckResult | Plan]]:
    """The chapter-4 mistakes: exercise answers, an open address without a login, a port out of
    range, root without --allow-root, steps run out of order, sizes, a missing consent."""
    import os

    seen: Seen = []
    keep: dict[str, CheckResult | Plan] = {}
    work = session(work_dir)
    layers = ch4.layers_quiz()
    keep["layers_blank"] = _run(seen, "layers", layers)
    keep["layers_two"] = _plan(seen, "layers", layers, q1="AB")
    keep["models_wrong"] = _run(seen, "models", ch4.models_quiz(), q1="B", q2="C", q3="A", q4="A", q5="C")
    config = ch4.jupyter_config(work)
    keep["open"] = _plan(seen, "config", config, ip="0.0.0.0", auth="none")
    keep["port"] = _plan(seen, "config", config, ip="127.0.0.1", auth="password", port=80)
    if os.geteuid() == 0:
        keep["root"] = _plan(seen, "config", config, port=8888, allow_root=False)
    keep["start_first"] = _run(seen, "start", ch4.jupyter_start(work))
    keep["login_first"] = _run(seen, "login", ch4.jupyter_login(work))
    kernel: Seen = []
    _run(kernel, "kernel", ch4.jupyter_kernel(work))
    code = ("内核里运行的代码：", "the code run in the kernel:")  # a note showing Python code, not prose
    seen += [(where, text) for where, text in kernel if not text.startswith(code)]
    _run(seen, "stop", ch4.jupyter_stop(work))
    keep["vm_memory"] = _plan(seen, "pve", ch4.pve_create("vm"), memory_mib=10)
    _run(seen, "pve", ch4.pve_create("ct"), vmid=5)
    keep["seafile_port"] = _plan(seen, "compose", ch4.seafile_compose(work), http_port=80000)
    keep["validate_first"] = _run(seen, "validate", ch4.seafile_validate(work))
    _run(seen, "up", ch4.seafile_up(work))
    keep["down"] = _plan(seen, "down", ch4.seafile_down(work))
    _plan(seen, "capstone", ch4.capstone(work), jupyter_port=1)
    _plan(seen, "capstone", ch4.capstone(work))
    return seen, keep


# -- the must-show tests -------------------------------------------------------------------------
def _assert_chinese(seen: Seen) -> None:
    leaks = [(where, text, latin_prose(text)) for where, text in seen if latin_prose(text)]
    assert not leaks, "English in the Chinese UI:\n" + "\n".join(f"{w}: {t!r} → {p}" for w, t, p in leaks)


def _assert_english(seen: Seen) -> None:
    leaks = [(where, text) for where, text in seen if chinese_outside_quotes(text)]
    assert not leaks, "Chinese in the English UI:\n" + "\n".join(f"{w}: {t!r}" for w, t in leaks)


def _assert_no_api_words(seen: Seen) -> None:
    api = re.compile(
        r"\b(overwrite|consent|allow_shrink|confirm)=|\bfmt=|"
        r"\b(SaveImage|LoadImage|BuildLocalBase|CreateImage|ConvertImage|BuildEfiImage|PrepareTinyGuest|"
        r"CleanupLabkit|CommitContainer)\b"
    )
    leaks = [(where, text) for where, text in seen if api.search(text)]
    assert not leaks, "a panel names the Python API:\n" + "\n".join(f"{w}: {t!r}" for w, t in leaks)


@pytest.mark.qemu
def test_chapter1_panels_speak_chinese_about_the_panel(tmp_path):
    seen, keep = _isolated("zh", lambda: chapter1(tmp_path / "w"))
    assert len(seen) > 60
    _assert_chinese(seen)
    _assert_no_api_words(seen)

    escape = keep["escape"]
    assert isinstance(escape, CheckResult) and escape.status == "error"
    assert escape.message.startswith("文件名：'../../etc/passwd' 指向工作目录之外")
    assert "虚拟大小：'abc'" in keep["bad_size"].message
    assert keep["created"].status == "pass", keep["created"]
    differs = keep["differs"]
    assert differs.status == "skipped" and differs.evidence["skip_reason"] == "consent", differs
    assert "勾选「允许覆盖（保留备份）」" in differs.message
    assert differs.evidence["keyword"] == "overwrite"  # the structured evidence keeps the keyword
    assert any("除非勾选「允许覆盖（保留备份）」" in n for n in keep["differs_plan"].notes)
    assert keep["src_typo"].message.startswith("源格式（空=自动识别）：'qcow' ")
    assert (
        "「目标格式」" in keep["compress_raw"].message
        and "「压缩（-c，仅 qcow2）」" in keep["compress_raw"].message
    )
    assert "勾选「允许覆盖（保留备份）」" in keep["convert_differs"].message
    assert "勾选「允许缩小（会丢数据，先备份）」" in keep["shrink"].message
    assert "「创建虚拟磁盘」" in keep["resize_missing"].message
    efi = keep["efi_differs"]
    assert efi.status == "skipped", efi
    assert "勾选「允许覆盖（保留备份）」" in efi.message or efi.evidence.get("skip_reason") == "host"
    assert keep["vm_memory"].message.startswith("内存 -m：'abc' ")
    assert keep["vm_smp"].message.startswith("vCPU 数 -smp：0 ")
    assert keep["boot_smp"].message.startswith("vCPU 数：0 不是 1 到 64 之间的 CPU 数")
    assert keep["boot_memory"].message.startswith("内存：'abc' ")
    assert "勾选「我同意修改（先备份）」" in keep["pve_consent"].message
    mirror = [n for n in keep["guest_plan"].notes if n.startswith("镜像来源：")]
    assert mirror and not latin_prose(mirror[0]), keep["guest_plan"].notes


@pytest.mark.qemu
def test_chapter1_panels_in_english_have_no_chinese(tmp_path):
    seen, keep = _isolated("en", lambda: chapter1(tmp_path / "w"))
    _assert_english(seen)
    _assert_no_api_words(seen)
    assert keep["escape"].message.startswith(
        "file name: '../../etc/passwd' points outside the work directory"
    )
    assert "tick “Allow overwrite (keep a backup)”" in keep["differs"].message


def test_chapter2_panels_speak_chinese_about_the_panel(tmp_path):
    seen, keep = _isolated("zh", lambda: chapter2(tmp_path / "w"))
    _assert_chinese(seen)
    _assert_no_api_words(seen)
    changed = keep["build_base_changed"]
    assert isinstance(changed, CheckResult) and changed.status == "error", changed
    assert "勾选「允许覆盖 Dockerfile（保留备份）」" in changed.message


def test_chapter2_panels_in_english_have_no_chinese(tmp_path):
    seen, _ = _isolated("en", lambda: chapter2(tmp_path / "w"))
    _assert_english(seen)
    _assert_no_api_words(seen)


@pytest.fixture
def _labkit_object(busybox_base) -> Iterator[str]:
    """At least one object labkit created exists, so cleanup has something to ask consent for."""
    yield busybox_base


@pytest.mark.docker
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_docker_refusals_name_the_checkbox(tmp_path, _labkit_object, lang):
    """Cleanup without the checkbox, a save over an existing file, the wrong DELETE ALL phrase:
    each refusal names what to tick or type in the panel (nothing is removed or overwritten); a
    missing archive names the panel that makes one. Runs that pass or fail say so in the UI's
    language too."""

    def body() -> Seen:
        seen: Seen = []
        work = session(tmp_path / "w")
        cleanup = _run(seen, "cleanup", ch2.cleanup())
        assert cleanup.status == "skipped" and cleanup.evidence["skip_reason"] == "consent", cleanup
        save = ch2.save_image(work, image=_labkit_object, name="base.tar")
        (work.path / "base.tar").write_bytes(b"precious")
        saved = _run(seen, "save", save)
        assert saved.status == "skipped", saved
        assert (work.path / "base.tar").read_bytes() == b"precious"
        nuke = _run(seen, "delete", ch2.delete_everything(), confirm="yes")
        assert nuke.status == "skipped", nuke
        missing = _run(seen, "load", ch2.load_image(work, "nope.tar.gz"))
        assert missing.status == "error", missing
        # what the engine and a container say is quoted, not passed off as the message's prose
        _run(seen, "engine", ch2.engine_check())
        _run(seen, "hello", ch2.hello())
        _run(seen, "run-image", ch2.run_image(_labkit_object))  # no note in a bare base: it fails
        if lang == "zh":
            assert "勾选「我确认删除上面列出的对象」" in cleanup.message
            assert "勾选「允许覆盖（保留备份）」" in saved.message
            assert "在「输入 DELETE ALL 确认」中填 DELETE ALL" in nuke.message
            assert "「保存并压缩镜像」" in missing.message
        else:
            assert "tick “I consent to deleting the objects listed”" in cleanup.message
            assert "enter DELETE ALL in “type DELETE ALL to confirm”" in nuke.message
        return seen

    seen = _isolated(lang, body)
    (_assert_chinese if lang == "zh" else _assert_english)(seen)
    _assert_no_api_words(seen)


def test_command_line_messages_name_the_flags_typed():
    """``labkit grade`` / ``validate`` speak of ``--max-mb`` and ``--overwrite``, not keywords."""
    from labkit.errors import InvalidField
    from labkit.i18n import consent_hint, option_labels, use_labels, use_lang

    labels = option_labels(["max_mb", "overwrite", "submissions"], positional=("submissions",))
    assert labels == {"max_mb": "--max-mb", "overwrite": "--overwrite"}
    with use_lang("zh"), use_labels(labels):
        assert str(InvalidField("max_mb", "nan", "不是数")).startswith("--max-mb：")
        assert consent_hint("overwrite") == "加上 --overwrite"
    with use_lang("en"), use_labels(labels):
        assert consent_hint("overwrite") == "add --overwrite"


def test_chapter3_panels_speak_chinese_about_the_panel(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_ZT_LAB", raising=False)
    seen, keep = _isolated("zh", lambda: chapter3(tmp_path / "w"))
    _assert_chinese(seen)
    _assert_no_api_words(seen)
    assert keep["quiz_blank"].evidence["skip_reason"] == "unanswered"
    assert keep["quiz_two"].message.startswith("第 1 题：'AB' 是单选题")
    assert keep["quiz_unknown"].message.startswith("第 1 题：'Z' 没有这个选项")
    assert keep["quiz_wrong"].message.startswith("答对 0/5 题。第 1 题：B：")
    assert keep["join_id"].message.startswith("网络 ID（16 位十六进制）：'8056c2e21c00000g' ")
    assert any("勾选「我确认离开这个网络」" in n for n in keep["leave"].notes)
    assert "勾选「我同意修改（先备份）」" in keep["kvm_consent"].message


def test_chapter3_panels_in_english_have_no_chinese(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_ZT_LAB", raising=False)
    seen, keep = _isolated("en", lambda: chapter3(tmp_path / "w"))
    _assert_english(seen)
    _assert_no_api_words(seen)
    assert keep["quiz_two"].message.startswith("question 1: 'AB' is single choice")


def test_chapter4_panels_speak_chinese_about_the_panel(tmp_path):
    seen, keep = _isolated("zh", lambda: chapter4(tmp_path / "w"))
    _assert_chinese(seen)
    _assert_no_api_words(seen)
    assert keep["layers_blank"].evidence["skip_reason"] == "unanswered"
    assert keep["layers_two"].message.startswith("第 1 题：'AB' 是单选题")
    assert keep["models_wrong"].message.startswith("答对 0/5 题。第 1 题：B：")
    assert "监听地址（--ip）" in keep["open"].message
    assert keep["port"].message.startswith("端口（--port）：80 ")
    if "root" in keep:
        assert "允许以 root 运行" in keep["root"].message
    assert "「写入 Jupyter Server 配置」" in keep["start_first"].message
    assert keep["login_first"].status == "skipped"
    assert keep["seafile_port"].message.startswith("网页端口")
    assert keep["validate_first"].status == "skipped"
    assert isinstance(keep["down"], Plan)  # without consent it only plans (no containers here)


def test_chapter4_panels_in_english_have_no_chinese(tmp_path):
    seen, keep = _isolated("en", lambda: chapter4(tmp_path / "w"))
    _assert_english(seen)
    _assert_no_api_words(seen)
    assert keep["port"].message.startswith("port (--port): 80 ")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_chapter4_login_and_restart_explanations_speak_the_students_language(tmp_path, lang):
    """Why a password did not get in (a typo; a config changed under a running server): in the UI's
    language, quoting the start panel's checkbox, naming no keyword (the real server's refusals are
    in test_jupyter_server)."""
    from labkit.steps.jupyter_checks import VerifyLogin

    def body() -> Seen:
        login = VerifyLogin(root=tmp_path / "j")
        seen: Seen = [
            ("login", login._why_refused({"password_matches_config": False})),
            ("login", login._why_refused({"config_changed_since_start": True})),
        ]
        return seen

    seen = _isolated(lang, body)
    assert all(text for _, text in seen)
    if lang == "zh":
        _assert_chinese(seen)
        assert "「用新配置重启（停止旧的服务器）」" in seen[1][1]
    else:
        _assert_english(seen)
    assert not any("restart=" in text for _, text in seen)
