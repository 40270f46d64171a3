# The AI/ML API's reference Python example for Runway gen3a_turbo, copied from the vendor's
# documentation ("Full Example: Generating and Retrieving the Video From the Server",
# https://docs.aimlapi.com/api-references/video-models/runway/gen3a_turbo, file
# docs/api-references/video-models/runway/gen3a_turbo.md in github.com/aimlapi/api-docs).
# Only two things differ from the original: the base URL (https://api.aimlapi.com became the
# standalone sandbox's default http://127.0.0.1:8000) and the key (<YOUR_AIMLAPI_KEY>). The
# rest, including the 10-second sleep and the status names it waits on, is unchanged.
# ruff: noqa
# fmt: off
import time
import requests

# Creating and sending a video generation task to the server (returns a generation ID)
def generate_video():
    url = "http://127.0.0.1:8000/v2/generate/video/runway/generation"
    payload = {
        "model": "gen3a_turbo",
        "prompt": "A menacing evil dragon appears in a distance above the tallest mountain, then rushes toward the camera with its jaws open, revealing massive fangs. We see it's coming",
        "ratio": "16:9",
        "image_url": "https://upload.wikimedia.org/wikipedia/commons/thumb/6/68/Liebener_Spitze_SW.JPG/1280px-Liebener_Spitze_SW.JPG",
    }
    # Insert your AI/ML API key instead of <YOUR_AIMLAPI_KEY>:
    headers = {"Authorization": "Bearer sandbox-key", "Content-Type": "application/json"}

    response = requests.post(url, json=payload, headers=headers)

    if response.status_code >= 400:
        print(f"Error: {response.status_code} - {response.text}")
    else:
        response_data = response.json()
        print("Generation:", response_data)
        return response_data


# Requesting the result of the generation task from the server using the generation_id:
def retrieve_video(gen_id):
    url = "http://127.0.0.1:8000/v2/generate/video/runway/generation"
    params = {
        "generation_id": gen_id,
    }
    # Insert your AI/ML API key instead of <YOUR_AIMLAPI_KEY>:
    headers = {"Authorization": "Bearer sandbox-key", "Content-Type": "application/json"}

    response = requests.get(url, params=params, headers=headers)
    return response.json()
    
    
# This is the main function of the program. From here, we sequentially call the video generation and then repeatedly request the result from the server every 10 seconds:
def main():
    generation_response = generate_video()
    gen_id = generation_response.get("id")
        
    if gen_id:
        start_time = time.time()

        timeout = 600
        while time.time() - start_time < timeout:
            response_data = retrieve_video(gen_id)

            if response_data is None:
                print("Error: No response from API")
                break
        
            status = response_data.get("status")

            if status == "generating" or status == "queued" or status == "waiting":
                print("Still waiting... Checking again in 10 seconds.")
                time.sleep(10)
            else:
                print("Generation complete:\n", response_data)
                return response_data
   
        print("Timeout reached. Stopping.")
        return None    

if __name__ == "__main__":
    main()
