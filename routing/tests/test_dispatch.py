"""Fan-out tasks are enqueued by name: the names resolve to the registered tasks, inline in embedded mode."""

from celery import current_app

from routing.services import dispatch


def test_every_dispatched_name_is_a_registered_task():
    dispatch._register_tasks()
    for name in (dispatch.COMPARISON_MODEL_RUN, dispatch.BATCH_ITEM_RUN):
        assert current_app.tasks[name].name == name


def test_in_embedded_mode_a_sent_task_runs_in_the_calling_process(monkeypatch):
    ran: list[int] = []
    dispatch._register_tasks()
    task = current_app.tasks[dispatch.BATCH_ITEM_RUN]
    monkeypatch.setattr(task, "run", lambda item_id: ran.append(item_id))
    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    try:
        assert dispatch.runs_inline()
        dispatch.task_send(dispatch.BATCH_ITEM_RUN, 41)
        dispatch.tasks_send_together(dispatch.BATCH_ITEM_RUN, [(42,), (43,)])
    finally:
        current_app.conf.task_always_eager = eager
    assert ran == [41, 42, 43]
