"""/v1 routes of the gateway."""

from django.urls import path

from routing.api import batch, compare, completions, embeddings, messages, models_api, responses

urlpatterns = [
    path("chat/completions", completions.chat_completions, name="v1-chat-completions"),
    path("chat/compare", compare.chat_compare, name="v1-chat-compare"),
    path("chat/compare/<str:comparison_id>", compare.chat_compare_detail, name="v1-chat-compare-detail"),
    path("chat/batch", batch.chat_batch, name="v1-chat-batch"),
    path("chat/batch/<str:batch_id>", batch.chat_batch_detail, name="v1-chat-batch-detail"),
    path("messages", messages.messages_create, name="v1-messages"),
    path("messages/count_tokens", messages.messages_count_tokens, name="v1-messages-count-tokens"),
    path("responses", responses.responses_create, name="v1-responses"),
    path("responses/<str:response_id>", responses.response_detail, name="v1-response-detail"),
    path("embeddings", embeddings.embeddings, name="v1-embeddings"),
    path("models", models_api.ModelListApi.as_view(), name="v1-models"),
    path("models/<path:model_id>", models_api.ModelDetailApi.as_view(), name="v1-model-detail"),
]
